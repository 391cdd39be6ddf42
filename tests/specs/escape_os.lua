-- expect: tests/specs/escape_os.lua:2: attempt to index a nil value (global 'os')
os.execute("touch /tmp/genc-escaped")
