//! (being written) typed headers.
