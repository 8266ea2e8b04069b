"""The bounds every HTTP message moxiehook reads is held to."""

MAX_HEAD = 64 * 1024  # bytes of status lines and headers accepted in an answer (informational ones included)
MAX_INFORMATIONAL = 8  # 1xx answers skipped before the real one
RECV_SIZE = 65536  # bytes asked of the socket per read
