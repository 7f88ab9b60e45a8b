# Greets $NAME, or its arguments; exits 2 without anyone to greet.
if [ "$#" -gt 0 ]; then who="$*"; else who="$NAME"; fi
[ -n "$who" ] || { echo "nobody to greet" >&2; exit 2; }
echo "hello, $who"
