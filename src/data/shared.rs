//! [`SharedArray`]: a read-only array that is either this process's own `Vec` or a view of
//! memory someone else owns and keeps alive (the node-shared copy of a dataset that the
//! ranks of one node map: see `sweep::node`). Readers see a `[T]` either way.

use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// A read-only array: owned, or a view of memory kept alive by an owner handle.
pub struct SharedArray<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Owned(Vec<T>),
    View {
        ptr: NonNull<T>,
        len: usize,
        /// Keeps the memory mapped; dropped with the last view.
        _owner: Arc<dyn Send + Sync>,
    },
}

// SAFETY: a view is read-only memory that its owner keeps alive and nobody writes while
// any view exists (the contract of `SharedArray::view`); sharing `&[T]` across threads is
// then as safe as for a `Vec<T>`.
unsafe impl<T: Sync> Sync for SharedArray<T> {}
// SAFETY: as above; the owner handle itself is `Send + Sync`.
unsafe impl<T: Send + Sync> Send for SharedArray<T> {}

impl<T> SharedArray<T> {
    /// A view of `len` values at `ptr`, kept alive by `owner`.
    ///
    /// # Safety
    /// `ptr` must be non-null, aligned for `T`, and valid for reads of `len` initialized
    /// values for as long as `owner` (or any clone of it) lives, and nothing may write that
    /// memory in that time.
    pub unsafe fn view(ptr: *const T, len: usize, owner: Arc<dyn Send + Sync>) -> Self {
        let ptr = NonNull::new(ptr as *mut T).expect("SharedArray::view: null pointer");
        assert!(
            ptr.as_ptr().is_aligned(),
            "SharedArray::view: pointer not aligned for the element type"
        );
        SharedArray {
            inner: Inner::View {
                ptr,
                len,
                _owner: owner,
            },
        }
    }

    /// Whether this is a view of memory owned elsewhere (not this array's own `Vec`).
    pub fn is_view(&self) -> bool {
        matches!(self.inner, Inner::View { .. })
    }
}

impl<T> From<Vec<T>> for SharedArray<T> {
    fn from(v: Vec<T>) -> Self {
        SharedArray {
            inner: Inner::Owned(v),
        }
    }
}

impl<T> Deref for SharedArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.inner {
            Inner::Owned(v) => v,
            // SAFETY: the contract of `view`: valid, aligned, unwritten while the owner lives,
            // and this array holds the owner.
            Inner::View { ptr, len, .. } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
        }
    }
}

/// A clone of a view is another view of the same memory (no copy); an owned array is copied.
impl<T: Clone> Clone for SharedArray<T> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Inner::Owned(v) => Inner::Owned(v.clone()),
            Inner::View { ptr, len, _owner } => Inner::View {
                ptr: *ptr,
                len: *len,
                _owner: Arc::clone(_owner),
            },
        };
        SharedArray { inner }
    }
}

impl<T: fmt::Debug> fmt::Debug for SharedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: PartialEq> PartialEq for SharedArray<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An owner that counts its drops and holds the memory.
    struct Counted(Vec<f32>, Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn owned_reads_as_its_vec() {
        let a = SharedArray::from(vec![1.0f64, 2.0, 3.0]);
        assert!(!a.is_view());
        assert_eq!(&a[..], &[1.0, 2.0, 3.0]);
        assert_eq!(a.len(), 3);
        let b = a.clone();
        assert_ne!(a.as_ptr(), b.as_ptr(), "an owned clone is a copy");
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}"), "[1.0, 2.0, 3.0]");
    }

    #[test]
    fn a_view_reads_the_owners_memory_and_keeps_it_alive() {
        let drops = Arc::new(AtomicUsize::new(0));
        let owner = Arc::new(Counted(vec![0.5, -1.0, 2.5, 4.0], drops.clone()));
        let base = owner.0.as_ptr();
        // SAFETY: the owner holds the Vec, which nobody writes.
        let view = unsafe { SharedArray::view(base.add(1), 2, owner.clone()) };
        let whole = unsafe { SharedArray::view(base, 4, owner) };
        assert!(view.is_view());
        assert_eq!(&view[..], &[-1.0, 2.5]);
        assert_eq!(view.as_ptr(), base.wrapping_add(1), "no copy");
        let clone = view.clone();
        assert_eq!(
            clone.as_ptr(),
            view.as_ptr(),
            "a view's clone shares the memory"
        );
        assert_eq!(view, SharedArray::from(vec![-1.0, 2.5]));
        drop(view);
        drop(whole);
        assert_eq!(drops.load(Ordering::SeqCst), 0, "a clone still holds it");
        assert_eq!(clone.iter().sum::<f32>(), 1.5);
        drop(clone);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "freed with the last view");
    }

    #[test]
    fn an_empty_view_and_threads() {
        let owner: Arc<dyn Send + Sync> = Arc::new(vec![7u8; 8]);
        let v = unsafe { SharedArray::view(NonNull::<u64>::dangling().as_ptr(), 0, owner) };
        assert!(v.is_empty());
        let data = Arc::new(vec![3.0f32; 1000]);
        let a = unsafe { SharedArray::view(data.as_ptr(), 1000, data.clone()) };
        let sums: Vec<f32> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2).map(|_| s.spawn(|| a.iter().sum::<f32>())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(sums, vec![3000.0, 3000.0]);
    }

    #[test]
    #[should_panic(expected = "not aligned")]
    fn a_misaligned_view_is_refused() {
        let data: Arc<Vec<u64>> = Arc::new(vec![0; 4]);
        let p = (data.as_ptr() as *const u8).wrapping_add(1) as *const u64;
        let _ = unsafe { SharedArray::view(p, 1, data.clone()) };
    }
}
