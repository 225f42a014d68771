"""What the fake OTLP receivers (fake_receivers.py over HTTP,
grpc_receiver.py over gRPC) share: the protobuf bytes of their answers,
written by hand from the public definitions (OTLP's
Export*ServiceResponse.partial_success, google.rpc.Status), and the fault
fields both take from GET /control."""


def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(number, payload):
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def partial_success(rejected, message):
    """An Export*ServiceResponse with partial_success {rejected = 1,
    error_message = 2}: every signal's has these numbers."""
    inner = b"\x08" + varint(rejected)
    if message:
        inner += field(2, message.encode())
    return field(1, inner)


def faults(query, default_code):
    """fail=N&code=C&delay=S&partial=R&message=TEXT of GET /control."""
    return {"fail": int(query.get("fail", 0)),
            "code": int(query.get("code", default_code)),
            "delay": float(query.get("delay", 0)),
            "partial": int(query.get("partial", 0)),
            "message": query.get("message", "")}
