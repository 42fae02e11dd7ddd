//! The gathered write of a TLS connection: a batch of slices (a reader's interleaved frames,
//! straight from the shared packet buffers) handed to rustls in one vectored write, so that
//! the packets share records of up to 16 KiB instead of taking one record (and one AEAD seal,
//! and 22 bytes of overhead) each. rustls 0.23's `Writer::write_vectored` takes every slice
//! into one payload and fragments it at the maximum record size; futures-rustls passes
//! `poll_write_vectored` straight to it.

use std::io::{self, IoSlice};

use futures_lite::{AsyncWrite, AsyncWriteExt};

/// Writes every byte of `iov` through `stream` (a TLS stream) with vectored writes, then
/// flushes it, so that the records are on the socket when it returns. rustls takes as much as
/// its send buffer allows per call (64 KiB by default); the rest follows in the next calls.
pub async fn write_gathered<W: AsyncWrite + Unpin>(
    stream: &mut W,
    iov: &[IoSlice<'_>],
) -> io::Result<()> {
    let mut rest: Vec<IoSlice<'_>> = iov.iter().filter(|s| !s.is_empty()).copied().collect();
    let mut rest = &mut rest[..];
    while !rest.is_empty() {
        let n = stream.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    stream.flush().await
}
