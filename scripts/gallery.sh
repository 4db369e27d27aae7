#!/usr/bin/env bash
# Regenerates the README's explain gallery under docs/img/: the four article examples and
# Keras's asymmetric 'same' as GIFs, and screenshots of the explain and summary pages
# (headless Chromium; scripts/install-browser.sh installs it). Run from the repository root.
set -euo pipefail
CNNLAB=${CNNLAB:-.venv/bin/cnnlab}
OUT=docs/img
for kind in conv2d depthwise separable transpose; do
    "$CNNLAB" explain "$kind" --gif "$OUT/explain-$kind.gif" | grep wrote
done
"$CNNLAB" explain conv2d --input-size 4,5 --strides 2 --padding same --gif "$OUT/explain-conv2d-same-stride2.gif" | grep wrote
"$CNNLAB" explain transpose --input-size 2,3 --strides 2 --padding same --in-channels 1 --filters 1 --seed 2 \
    --gif "$OUT/explain-transpose-same-stride2.gif" | grep wrote

pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
"$CNNLAB" explain conv2d --input-size 4,5 --strides 2 --padding same --cell 1,2,0 --html "$pages/explain.html" | grep wrote
"$CNNLAB" summary densenet_cifar --input 3,32,32 --html "$pages/summary.html" | grep wrote
shot() {  # shot PAGE PNG WIDTH,HEIGHT
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$pages/profile" \
        --window-size="$3" --screenshot="$2" "file://$1" 2>/dev/null
    echo "wrote $2"
}
shot "$pages/explain.html" "$OUT/explain-page.png" 1300,820
shot "$pages/summary.html" "$OUT/summary-page.png" 1300,900
