# What a container sees; the same on every engine.
echo "$GREETING"
echo "user $(id -u):$(id -g) in $(pwd)"
echo "args: $*"
echo "a line on stderr" >&2
