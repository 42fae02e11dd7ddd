//! Helpers shared by the end-to-end tests (and the `rtp_sender` example).

pub(crate) mod sender;
