#!/bin/sh
# The job runner of the compose file. `patron jobs scheduler` runs every scheduled job on its
# interval (webhooks, messages, journeys, expiry, tiers, reminders, scores, coupons, mall, tags,
# retention …: the list it prints when it starts); this loop adds the nightly backup, its drill
# and the ledger check. Every job is idempotent, so a late or repeated run is harmless. Times
# are UTC; move the nightly ones to your quiet hours.
set -u
patron jobs scheduler &
scheduler=$!
trap 'kill -TERM "$scheduler"; wait "$scheduler"; exit 0' TERM INT
while true; do
  case "$(date -u +%H:%M)" in
    19:00) patron backup && patron backup drill ;;   # 03:00 in Shanghai: backup, proved restorable
    21:00) patron check ;;
  esac
  kill -0 "$scheduler" 2>/dev/null || { echo "the scheduler stopped" >&2; exit 1; }
  sleep 60 &
  wait $!
done
