//! Literal-byte tests of dump reading (B12, DUMP_INTR, multi-part) and payload accounting.
