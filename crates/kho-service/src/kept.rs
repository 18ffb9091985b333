//! Values read from the store and kept for a few seconds: what nearly every page and answer
//! names (agencies, dictionary terms, a dataset's public feedback) changes a few times a year
//! and is read thousands of times a minute. A change made through this process drops the kept
//! value at once; one made by another process (the CLI, another server) shows within
//! [`KEEP`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kho_core::Result;

/// How long a kept value is used before the store is read again.
pub const KEEP: Duration = Duration::from_secs(5);

/// One value, kept.
pub(crate) struct Kept<T> {
    value: RwLock<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept { value: RwLock::new(None) }
    }
}

impl<T: PartialEq> Kept<T> {
    /// The kept value, or `load`'s if it is older than [`KEEP`] or was dropped. A value read
    /// again and found unchanged stays the same `Arc`, so what callers build from it can be
    /// kept as long as the pointer stays the same.
    pub async fn get<F>(&self, load: impl FnOnce() -> F) -> Result<Arc<T>>
    where
        F: Future<Output = Result<T>>,
    {
        let previous = match self.value.read() {
            Ok(kept) => match kept.as_ref() {
                Some((at, v)) if at.elapsed() < KEEP => return Ok(v.clone()),
                Some((_, v)) => Some(v.clone()),
                None => None,
            },
            Err(_) => None,
        };
        let read = load().await?;
        let value = match previous {
            Some(old) if *old == read => old,
            _ => Arc::new(read),
        };
        if let Ok(mut kept) = self.value.write() {
            *kept = Some((Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Drop the kept value: the next read goes to the store.
    pub fn forget(&self) {
        if let Ok(mut kept) = self.value.write() {
            *kept = None;
        }
    }
}

/// A value per key, kept; at most `max` keys (past that, the map starts over).
pub(crate) struct KeptMap<K, T> {
    values: RwLock<HashMap<K, (Instant, Arc<T>)>>,
    max: usize,
}

impl<K: Eq + Hash + Clone, T> KeptMap<K, T> {
    pub fn new(max: usize) -> Self {
        KeptMap { values: RwLock::new(HashMap::new()), max }
    }

    /// The value kept for `key`, or `load`'s if it is older than [`KEEP`] or was dropped.
    pub async fn get<F>(&self, key: &K, load: impl FnOnce() -> F) -> Result<Arc<T>>
    where
        F: Future<Output = Result<T>>,
    {
        if let Ok(values) = self.values.read()
            && let Some((at, v)) = values.get(key)
            && at.elapsed() < KEEP
        {
            return Ok(v.clone());
        }
        let value = Arc::new(load().await?);
        if let Ok(mut values) = self.values.write() {
            if values.len() >= self.max {
                values.clear();
            }
            values.insert(key.clone(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Drop every kept value.
    pub fn forget_all(&self) {
        if let Ok(mut values) = self.values.write() {
            values.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_kept_value_is_read_once_until_forgotten_and_stays_the_same_arc_when_unchanged() {
        let reads = AtomicUsize::new(0);
        let kept: Kept<Vec<i32>> = Kept::default();
        let load = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok(vec![1, 2])
        };
        let a = kept.get(load).await.unwrap();
        let b = kept.get(load).await.unwrap();
        assert_eq!((reads.load(Ordering::SeqCst), Arc::ptr_eq(&a, &b)), (1, true));
        kept.forget();
        let c = kept.get(load).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        assert!(!Arc::ptr_eq(&a, &c), "forgotten: a new value");
        // Expired and read again unchanged: the same Arc.
        if let Ok(mut v) = kept.value.write()
            && let Some((at, _)) = v.as_mut()
        {
            *at -= KEEP;
        }
        let d = kept.get(load).await.unwrap();
        assert_eq!((reads.load(Ordering::SeqCst), Arc::ptr_eq(&c, &d)), (3, true));
        let e = kept.get(|| async { Ok(vec![3]) }).await;
        assert_eq!(e.unwrap().as_slice(), &[1, 2], "still fresh: not read");
    }

    #[tokio::test]
    async fn kept_maps_read_each_key_once_until_forgotten_and_stay_bounded() {
        let reads = AtomicUsize::new(0);
        let kept: KeptMap<String, usize> = KeptMap::new(3);
        let load = |n: usize| {
            let reads = &reads;
            move || async move {
                reads.fetch_add(1, Ordering::SeqCst);
                Ok(n)
            }
        };
        for round in 0..2 {
            for k in 0..3 {
                assert_eq!(*kept.get(&format!("k{k}"), load(k)).await.unwrap(), k, "round {round}");
            }
        }
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        kept.get(&"k3".to_string(), load(3)).await.unwrap();
        assert!(kept.values.read().unwrap().len() <= 3);
        kept.forget_all();
        assert_eq!(*kept.get(&"k0".to_string(), load(10)).await.unwrap(), 10);
        let err: Result<Arc<usize>> =
            kept.get(&"bad".to_string(), || async { Err(kho_core::Error::internal("store down")) }).await;
        assert!(err.is_err(), "a failed read is not kept");
        assert_eq!(*kept.get(&"bad".to_string(), load(4)).await.unwrap(), 4);
    }
}
