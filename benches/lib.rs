//! Benchmarks live in `benches/*.rs`; this library is empty so the package has a target.
