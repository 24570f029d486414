#!/bin/sh
# Off-peak fills end to end (issue 6): simulated days of one ISP site on
# this machine with a real origin, a one-node control plane and a flash
# and a storage appliance on loopback, under a time-compressed clock;
# fills on against fills off (pure pull-through), then the byte hit ratio
# of the appliance's cache policy against LRU and Belady on the recorded
# requests. The last line is
#   peak_origin_reduction=R peak_byte_hit_ratio=H fill_outside_window_bytes=N
#
#   bench/fillsim/run.sh              # 5 days of 40 s: about 8 minutes
#   bench/fillsim/run.sh --quick      # 3 days of 30 s: under 5 minutes
#   bench/fillsim/run.sh -days 7 -sessions 4000 -seed 2
set -eu
cd "$(dirname "$0")/../.."
exec go run ./bench/fillsim "$@"
