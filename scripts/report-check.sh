#!/usr/bin/env bash
# Opens a report in headless Chromium as a reader would and checks it (issue 19):
#   * no console error or uncaught exception while the page loads;
#   * every <img> decoded, at the size its width/height attributes promise, and not blank
#     (its pixels are not all one colour);
#   * a full-page screenshot written to OUT/report.png as the test's artefact.
# Usage: scripts/report-check.sh REPORT.html OUT_DIR
# Installs Debian's `chromium` package if no Chromium is on the PATH (root, or sudo).
set -euo pipefail

report="$(realpath "$1")"
out="$(mkdir -p "$2" && realpath "$2")"

browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser="$b"; break; fi
done
if [ -z "$browser" ]; then
    echo "== installing chromium (Debian package)" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
    browser=chromium
fi

flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
       --disable-extensions --disable-background-networking --mute-audio
       --user-data-dir="$out/chromium-profile")

# 1. The page on its own: console messages go to stderr with --enable-logging.
"$browser" "${flags[@]}" --enable-logging=stderr --v=0 --virtual-time-budget=3000 \
    --window-size=1200,9000 --screenshot="$out/report.png" "file://$report" \
    >"$out/chromium-load.log" 2>&1 || true
if [ ! -s "$out/report.png" ]; then
    echo "report-check: Chromium wrote no screenshot; its log:" >&2
    cat "$out/chromium-load.log" >&2
    exit 1
fi
if grep -E "CONSOLE|Uncaught" "$out/chromium-load.log" | grep -F "$(basename "$report")" >"$out/console-errors.txt"; then
    echo "report-check: the page logged to the console:" >&2
    cat "$out/console-errors.txt" >&2
    exit 1
fi

# 2. The images, inspected from a wrapper page beside the report that loads it in an
# iframe (same directory, so file access between the two is allowed with the flag below)
# and writes what it found into its own DOM, which --dump-dom prints.
wrapper="$(dirname "$report")/.report-check-$$.html"
trap 'rm -f "$wrapper"' EXIT
cat >"$wrapper" <<EOF
<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" src="$(basename "$report")" width="1200" height="800"></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {
  const doc = document.getElementById('f').contentDocument;
  const lines = [];
  for (const img of doc.images) {
    const w = +img.getAttribute('width'), h = +img.getAttribute('height');
    let blank = 'unknown';
    try {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext('2d'); g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let same = true;
      for (let i = 4; i < d.length; i += 4) {
        if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) { same = false; break; }
      }
      blank = same ? 'blank' : 'drawn';
    } catch (e) { blank = 'unreadable:' + e.name; }
    lines.push(['IMG', img.complete, img.naturalWidth, img.naturalHeight, w, h, blank].join(' '));
  }
  lines.push('IMAGES ' + doc.images.length);
  document.getElementById('result').textContent = lines.join('\n');
});
</script></body></html>
EOF
"$browser" "${flags[@]}" --allow-file-access-from-files --virtual-time-budget=5000 \
    --dump-dom "file://$wrapper" >"$out/images.html" 2>"$out/chromium-images.log" || true
python3 - "$out/images.html" <<'PY'
import html, re, sys
text = html.unescape(open(sys.argv[1]).read())
images = re.findall(r"IMG (true|false) (\d+) (\d+) (\d+) (\d+) (\S+)", text)
total = re.findall(r"IMAGES (\d+)", text)
if not total:
    sys.exit("report-check: the image probe did not run (see chromium-images.log)")
if int(total[0]) != len(images):
    sys.exit(f"report-check: {total[0]} images in the page, {len(images)} inspected")
bad = []
for complete, nw, nh, w, h, state in images:
    if complete != "true" or nw == "0" or (nw, nh) != (w, h) or state != "drawn":
        bad.append(f"complete={complete} natural={nw}x{nh} declared={w}x{h} {state}")
if not images:
    sys.exit("report-check: the report has no images")
if bad:
    sys.exit("report-check: images not drawn as declared:\n  " + "\n  ".join(bad))
print(f"report-check: {len(images)} images drawn at their declared sizes, no console errors")
PY
echo "report-check: screenshot → $out/report.png"
