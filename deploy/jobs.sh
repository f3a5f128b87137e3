#!/bin/sh
# The job runner of the compose file: every job is idempotent, so a late or repeated run is
# harmless. Times are UTC; move the nightly ones to your quiet hours.
set -u
minute=0
while true; do
  patron jobs run webhooks
  if [ $((minute % 15)) -eq 0 ]; then patron jobs run release; fi
  if [ $((minute % 60)) -eq 5 ]; then patron jobs run expire; fi
  case "$(date -u +%H:%M)" in
    18:30) patron jobs run tiers ;;                  # 02:30 in Shanghai
    19:00) patron backup && patron backup drill ;;   # nightly backup, proved restorable
    19:15) patron check ;;
    20:00) patron jobs run purge-idempotency ;;
    01:00) patron jobs run reminders ;;
  esac
  minute=$(( (minute + 1) % 1440 ))
  sleep 60
done
