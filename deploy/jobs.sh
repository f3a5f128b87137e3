#!/bin/sh
# The job runner of the compose file. `patron jobs scheduler` runs every scheduled job on its
# interval (webhooks, messages, journeys, expiry, scores, coupons, mall, tags …: the list it
# prints when it starts); this loop adds the daily ones. Every job is idempotent, so a late or
# repeated run is harmless. Times are UTC; move the nightly ones to your quiet hours.
set -u
patron jobs scheduler &
scheduler=$!
trap 'kill -TERM "$scheduler"; wait "$scheduler"; exit 0' TERM INT
while true; do
  case "$(date -u +%H:%M)" in
    18:30) patron jobs run tiers ;;                  # 02:30 in Shanghai
    19:00) patron backup && patron backup drill ;;   # nightly backup, proved restorable
    19:15) patron check ;;
    20:00) patron jobs run purge-idempotency ;;
    01:00) patron jobs run reminders; patron jobs run coupon-reminders ;;
  esac
  kill -0 "$scheduler" 2>/dev/null || { echo "the scheduler stopped" >&2; exit 1; }
  sleep 60 &
  wait $!
done
