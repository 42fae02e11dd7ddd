//! (being written) client and server session machines.
