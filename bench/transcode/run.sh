#!/usr/bin/env bash
# Benchmark of the Fillcast transcoder (issue 3).
#
# 1. Speed: times `fillcast transcode` (probe, encode, package, downloads,
#    verification) against the hand-tuned single ffmpeg command that makes
#    the same five rungs with the same CMAF packaging, and against five
#    separate ffmpeg runs (one per rung), on a 20 s 1080p30 source
#    (testsrc2 with light noise, sine audio). x264 veryfast everywhere.
#    Medians over $ROUNDS rounds (default 3), contenders in rotating order.
# 2. Per-title: transcodes an easy 20 s 1080p30 source (testsrc2 without
#    noise) with the default ladder and with --ladder per-title, and
#    prints each rung's average bitrate and its SSIM against the source
#    scaled to the rung, measured on the whole title with ffmpeg's ssim
#    filter.
#
# Usage: bench/transcode/run.sh            (from anywhere in the repository)
#        ROUNDS=5 KEEP=1 bench/transcode/run.sh
#        FILLCAST_BIN=/path/to/fillcast bench/transcode/run.sh  (skip the build)
#        PARTS=pertitle bench/transcode/run.sh                  (speed, pertitle or both)
# Needs go, ffmpeg and ffprobe. The numbers only mean something on an
# otherwise idle machine; CPU seconds (user + system of every process)
# are printed beside wall time because they shift much less when other
# work shares the machine.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-speed pertitle}
SECONDS_SRC=${SECONDS_SRC:-20}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fillcast-transcode-bench.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$tmp"' EXIT; else echo "keeping $tmp"; fi

for bin in go ffmpeg ffprobe; do
	command -v "$bin" >/dev/null || { echo "run.sh: $bin not found" >&2; exit 1; }
done
if [[ -n "${FILLCAST_BIN:-}" ]]; then
	cp "$FILLCAST_BIN" "$tmp/fillcast" # a prebuilt binary, for development
else
	(cd "$root" && go build -o "$tmp/fillcast" ./cmd/fillcast)
fi
"$tmp/fillcast" help >"$tmp/help.txt"
if ! grep -q '^  transcode ' "$tmp/help.txt"; then
	echo "run.sh: this fillcast build has no transcode subcommand (register runTranscode in cmd/fillcast/main.go)" >&2
	exit 1
fi

ff() { ffmpeg -hide_banner -nostdin -loglevel error -y "$@"; }

echo "== sources (${SECONDS_SRC}s 1080p30, sine audio)"
ff -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$SECONDS_SRC" \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$SECONDS_SRC" \
	-vf "noise=alls=4:allf=t" -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p \
	-c:a aac -b:a 128k "$tmp/noisy.mp4"
ff -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$SECONDS_SRC" \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$SECONDS_SRC" \
	-c:v libx264 -preset veryfast -crf 16 -pix_fmt yuv420p -c:a aac -b:a 128k "$tmp/easy.mp4"
ls -l "$tmp/noisy.mp4" "$tmp/easy.mp4" | awk '{print "  " $NF ": " $5 " bytes"}'

# The ladder every contender makes: name width height bitrate(k).
RUNGS=("1080p 1920 1080 5000" "720p 1280 720 3000" "480p 854 480 1200" "360p 640 360 700" "240p 426 240 300")
SEG=4
GOP=$((30 * SEG))

# x264 options of one rung: average bitrate, VBV capped at 110 % with a
# two-second buffer, keyframes every segment, no scene cuts.
rate_opts() { # index kbps
	echo "-b:v:$1 ${2}k -maxrate:v:$1 $(($2 * 11 / 10))k -bufsize:v:$1 $(($2 * 2))k"
}
X264="-c:v libx264 -preset veryfast -profile:v high -g $GOP -keyint_min $GOP -sc_threshold 0"
HLS="-f hls -hls_time $SEG -hls_playlist_type vod -hls_segment_type fmp4 -hls_flags independent_segments -hls_fmp4_init_filename init.mp4"

# The hand-tuned single command: decode once, split, scale, encode all
# rungs and the audio, one CMAF segment set per rendition plus a master
# playlist.
run_single() { # outdir
	local out=$1 graph="[0:v]split=5[s0][s1][s2][s3][s4]" maps="" rates="" vsm="" i=0
	mkdir -p "$out"
	for r in "${RUNGS[@]}"; do
		set -- $r
		graph+=";[s$i]scale=$2:$3,setsar=1[v$i]"
		maps+=" -map [v$i]"
		rates+=" $(rate_opts $i $4)"
		vsm+=" v:$i,agroup:aac,name:$1"
		i=$((i + 1))
	done
	vsm+=" a:0,agroup:aac,name:audio"
	(cd "$out" && ff -i "$tmp/noisy.mp4" -filter_complex "$graph" $maps -map 0:a $X264 $rates \
		-c:a aac -b:a 128k -ac 2 $HLS -hls_segment_filename "%v/seg-%05d.m4s" \
		-master_pl_name master.m3u8 -var_stream_map "${vsm# }" "%v/playlist.m3u8")
}

# Five separate runs, one rung each (the first also carries the audio).
run_five() { # outdir
	local out=$1 i=0
	for r in "${RUNGS[@]}"; do
		set -- $r
		mkdir -p "$out/$1"
		if ((i == 0)); then
			(cd "$out" && ff -i "$tmp/noisy.mp4" -map 0:v -map 0:a -vf "scale=$2:$3,setsar=1" $X264 $(rate_opts 0 $4) \
				-c:a aac -b:a 128k -ac 2 $HLS -hls_segment_filename "%v/seg-%05d.m4s" \
				-var_stream_map "v:0,agroup:aac,name:$1 a:0,agroup:aac,name:audio" "%v/playlist.m3u8")
		else
			(cd "$out/$1" && ff -i "$tmp/noisy.mp4" -map 0:v -vf "scale=$2:$3,setsar=1" $X264 $(rate_opts 0 $4) \
				$HLS -hls_segment_filename "seg-%05d.m4s" playlist.m3u8)
		fi
		i=$((i + 1))
	done
}

run_fillcast() { # outdir
	"$tmp/fillcast" transcode --quiet --log-level warn --in "$tmp/noisy.mp4" --out "$1" >"$tmp/fillcast-summary.txt"
}

now() { date +%s.%N; }
# CPU seconds (user + system) used so far by this shell's finished
# children: wall time is at the mercy of whatever else runs on the
# machine, CPU time much less so.
# Call it directly (not in $(...), whose subshell has no children yet);
# it sets CPU.
cpu() {
	times >"$tmp/times.txt"
	CPU=$(tail -1 "$tmp/times.txt" | awk '{t = 0; for (i = 1; i <= 2; i++) {split($i, p, "m"); t += p[1] * 60 + p[2]}; printf "%.2f", t}')
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

if [[ " $PARTS " == *" speed "* ]]; then
echo "== speed: $ROUNDS rounds, x264 veryfast, $SEG s CMAF segments"
contenders=(fillcast single five)
declare -A times cpus
for ((round = 0; round < ROUNDS; round++)); do
	for ((k = 0; k < 3; k++)); do
		c=${contenders[$(((round + k) % 3))]}
		out="$tmp/out-$c"
		rm -rf "$out"
		cpu
		c0=$CPU
		t0=$(now)
		"run_$c" "$out"
		t1=$(now)
		cpu
		c1=$CPU
		s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
		u=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
		times[$c]+="$s "
		cpus[$c]+="$u "
		printf '  round %d  %-8s %7.2f s wall %8.2f s CPU\n' "$((round + 1))" "$c" "$s" "$u"
		rm -rf "$out"
	done
done
med_f=$(median ${times[fillcast]})
med_s=$(median ${times[single]})
med_5=$(median ${times[five]})
cpu_f=$(median ${cpus[fillcast]})
cpu_s=$(median ${cpus[single]})
cpu_5=$(median ${cpus[five]})
printf '\n%-34s %11s %11s   %s\n' "contender (medians)" "wall" "CPU" "wall of each round"
printf '%-34s %10.2fs %10.2fs   %s\n' "fillcast transcode (everything)" "$med_f" "$cpu_f" "${times[fillcast]}"
printf '%-34s %10.2fs %10.2fs   %s\n' "hand-tuned single ffmpeg command" "$med_s" "$cpu_s" "${times[single]}"
printf '%-34s %10.2fs %10.2fs   %s\n' "five separate ffmpeg runs" "$med_5" "$cpu_5" "${times[five]}"
awk -v f="$med_f" -v s="$med_s" -v v="$med_5" -v cf="$cpu_f" -v cs="$cpu_s" -v cv="$cpu_5" 'BEGIN {
	printf "ratio fillcast / single   = %.3f wall, %.3f CPU  (target <= 1.05)\n", f / s, cf / cs
	printf "ratio five runs / single  = %.3f wall, %.3f CPU\n", v / s, cv / cs
	printf "ratio fillcast / five     = %.3f wall, %.3f CPU\n", f / v, cf / cv
}'
echo "fillcast stages of the last run:"
grep '^stages:' "$tmp/fillcast-summary.txt" | sed 's/^/  /'
fi

# Per-rung average bitrate (kb/s, from the segment sizes) and SSIM
# against the source scaled to the rung, over the whole title.
measure() { # titledir label
	local dir=$1 label=$2 graph="" maps="" inputs=() n=0 names=()
	for r in "${RUNGS[@]}"; do
		set -- $r
		[[ -d "$dir/$1" ]] || continue
		names+=("$1")
		inputs+=(-i "$dir/$1/playlist.m3u8")
		n=$((n + 1))
	done
	graph="[0:v]split=$n"
	for ((i = 0; i < n; i++)); do graph+="[s$i]"; done
	for ((i = 0; i < n; i++)); do
		local size
		size=$(grep -m1 "^${names[$i]} " <(printf '%s\n' "${RUNGS[@]}") | awk '{print $2 ":" $3}')
		graph+=";[s$i]scale=$size,setsar=1,setpts=N/(30*TB)[r$i];[$((i + 1)):v]setsar=1,setpts=N/(30*TB)[d$i];[d$i][r$i]ssim=stats_file=$label-$i.ssim[q$i]"
		maps+=" -map [q$i]"
	done
	(cd "$tmp" && ff -i "$tmp/easy.mp4" "${inputs[@]}" -filter_complex "$graph" $maps -f null -)
	for ((i = 0; i < n; i++)); do
		local bytes secs kbps ssim
		bytes=$(cat "$dir/${names[$i]}"/seg-*.m4s | wc -c)
		secs=$(awk -F'[:,]' '/^#EXTINF/ {s += $2} END {print s}' "$dir/${names[$i]}/playlist.m3u8")
		kbps=$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.0f", b * 8 / s / 1000}')
		ssim=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^All:/) {sub("All:", "", $i); s += $i; n++}} END {printf "%.4f", s / n}' "$tmp/$label-$i.ssim")
		echo "${names[$i]} $kbps $ssim"
	done
}

[[ " $PARTS " == *" pertitle "* ]] || exit 0
echo
echo "== per-title on easy content (testsrc2 without noise)"
t0=$(now)
"$tmp/fillcast" transcode --quiet --log-level warn --in "$tmp/easy.mp4" --out "$tmp/easy-default" >/dev/null
t1=$(now)
"$tmp/fillcast" transcode --quiet --log-level warn --ladder per-title --in "$tmp/easy.mp4" --out "$tmp/easy-pertitle" >"$tmp/pertitle-summary.txt"
t2=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "default ladder %.1f s, per-title ladder %.1f s (analysis included)\n", b - a, c - b}'
sed -n '/^per-title:/,/^stages:/p' "$tmp/pertitle-summary.txt" | grep -v '^stages:' | sed 's/^/  /'
measure "$tmp/easy-default" default >"$tmp/m-default.txt"
measure "$tmp/easy-pertitle" pertitle >"$tmp/m-pertitle.txt"
echo "measured on the whole title (average bitrate from the segments, SSIM vs the scaled source):"
printf '  %-6s %12s %8s   %12s %8s   %7s %8s\n' rung "default kb/s" SSIM "per-title" SSIM saving "dSSIM"
paste -d' ' "$tmp/m-default.txt" "$tmp/m-pertitle.txt" | awk '{
	printf "  %-6s %12d %8.4f   %12d %8.4f   %6.1f%% %+8.4f\n", $1, $2, $3, $5, $6, 100 * (1 - $5 / $2), $6 - $3
	d += $2; p += $5
} END {
	printf "  %-6s %12d %8s   %12d %8s   %6.1f%%   (target >= 15%% at equal SSIM)\n", "total", d, "", p, "", 100 * (1 - p / d)
}'
