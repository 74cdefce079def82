"""schemathesis hooks of test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

The upload's file part may be sent as application/pdf (its encoding lists it); schemathesis
has no serializer for that type and errors the case. A PDF part is bytes, as its built-in
application/octet-stream serializer sends them.
"""

import schemathesis

schemathesis.serializer.alias("application/pdf", "application/octet-stream")
