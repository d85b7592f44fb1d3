"""Lightricks' LTX-2 (video only), loaded from the files as released: our code, proven equal to Lightricks'
`ltx-core` at tiny random configs in tests/ltx2/."""
