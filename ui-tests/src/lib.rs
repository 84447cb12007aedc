//! Compile-fail and compile-pass tests of the fiber macros live in `tests/`.
