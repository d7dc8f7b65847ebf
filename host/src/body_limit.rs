//! The per-tenant request body limit for bodies that stream without a
//! declared length. Past the limit the guest gets `HttpRequestBodySize`, but
//! only after the rest of the body was read and thrown away (up to
//! [`DRAIN_MAX`] more bytes): a server that answers 413 and closes while the
//! client is still sending makes the client's TCP stack see a reset, and the
//! client reports a broken connection instead of our 413 (RFC 9112 §9.6,
//! "lingering close"). The drain never extends the request's deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;

/// Bytes read and discarded past the limit before giving up on a clean close.
pub const DRAIN_MAX: u64 = 8 << 20;

pub struct CappedBody<B> {
    inner: B,
    max: u64,
    remaining: u64,
    drained: Option<u64>,
    done: bool,
    over_limit: Arc<AtomicBool>,
}

impl<B> CappedBody<B> {
    /// `over_limit` is set when the body turns out to be too large.
    pub fn new(inner: B, max: u64, over_limit: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            max,
            remaining: max,
            drained: None,
            done: false,
            over_limit,
        }
    }

    fn too_large(&mut self) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        self.done = true;
        Poll::Ready(Some(Err(ErrorCode::HttpRequestBodySize(Some(self.max)))))
    }
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<ErrorCode>,
{
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) if this.drained.is_some() => return this.too_large(),
                Poll::Ready(None) => return Poll::Ready(None),
                // Once over the limit, a broken connection is still a too-large body.
                Poll::Ready(Some(Err(_))) if this.drained.is_some() => return this.too_large(),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let len = frame
                .data_ref()
                .map_or(0, |d| u64::try_from(d.len()).unwrap_or(u64::MAX));
            if let Some(drained) = &mut this.drained {
                *drained = drained.saturating_add(len);
                if *drained > DRAIN_MAX {
                    return this.too_large();
                }
                continue;
            }
            if len > this.remaining {
                this.over_limit.store(true, Ordering::Relaxed);
                this.drained = Some(len - this.remaining);
                continue;
            }
            this.remaining -= len;
            return Poll::Ready(Some(Ok(frame)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.drained.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.drained.is_some() || self.done {
            return SizeHint::default();
        }
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http_body_util::BodyExt as _;

    use super::*;

    /// A body of the given chunks, counting how many were read.
    struct Chunks(VecDeque<Bytes>, Arc<std::sync::atomic::AtomicUsize>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = ErrorCode;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
            let next = self.0.pop_front();
            if next.is_some() {
                self.1.fetch_add(1, Ordering::Relaxed);
            }
            Poll::Ready(next.map(|b| Ok(Frame::data(b))))
        }
    }

    fn capped(
        chunks: &[usize],
        max: u64,
    ) -> (
        CappedBody<Chunks>,
        Arc<AtomicBool>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let body = Chunks(
            chunks.iter().map(|&n| Bytes::from(vec![b'x'; n])).collect(),
            Arc::clone(&read),
        );
        let flag = Arc::new(AtomicBool::new(false));
        (CappedBody::new(body, max, Arc::clone(&flag)), flag, read)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_body_within_the_limit_passes_unchanged() {
        let (body, flag, _) = capped(&[10, 20, 30], 60);
        let bytes = block_on(body.collect()).expect("fits").to_bytes();
        assert_eq!(bytes.len(), 60);
        assert!(!flag.load(Ordering::Relaxed));
    }

    #[test]
    fn a_body_over_the_limit_is_read_to_its_end_then_refused() {
        let (body, flag, read) = capped(&[10, 20, 30, 40, 50], 35);
        let Err(err) = block_on(body.collect()) else {
            panic!("a body over the limit was accepted");
        };
        assert!(matches!(err, ErrorCode::HttpRequestBodySize(Some(35))));
        assert!(flag.load(Ordering::Relaxed));
        assert_eq!(read.load(Ordering::Relaxed), 5, "the rest was drained");
    }

    #[test]
    fn draining_stops_at_its_cap() {
        let chunk = usize::try_from(DRAIN_MAX / 4).expect("fits");
        let (body, flag, read) =
            capped(&[100, chunk, chunk, chunk, chunk, chunk, chunk, chunk], 50);
        assert!(block_on(body.collect()).is_err());
        assert!(flag.load(Ordering::Relaxed));
        assert_eq!(read.load(Ordering::Relaxed), 5, "gave up past DRAIN_MAX");
    }
}
