"""Schemathesis hooks for phone-verify's OpenAPI check (.ci/run).

A phone number's validity (libphonenumber's rules) is more than JSON Schema can say, so
the document marks `to` with `format: phone`; here that format gets a generator of
numbers that really are valid, written the ways people write them."""
import schemathesis
from hypothesis import strategies as st

_written = [
    "+1201555{:04d}",
    "(201) 555-{:04d}",
    "201.555.{:04d}",
    " +1 201 555 {:04d} ",
]

schemathesis.openapi.format(
    "phone",
    st.builds(lambda shape, n: shape.format(n), st.sampled_from(_written), st.integers(0, 9999)),
)
