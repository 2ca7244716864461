//! The blocking client behind `ratchet agent` (filled in below).
