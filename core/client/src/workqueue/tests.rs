//! Work queue tests, against client-go `util/workqueue` semantics. Time is paused:
//! delays are checked on tokio's virtual clock, never on the wall clock.

use super::*;
use futures_util::FutureExt;
use std::sync::Mutex as StdMutex;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn dedup_and_fifo_order() {
    let q = WorkQueue::new(10);
    q.add("a").unwrap();
    q.add("b").unwrap();
    q.add("a").unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    assert!(q.get().now_or_never().is_none(), "queue is empty");
}

/// client-go queue_test TestAddWhileProcessing: an item being processed is not
/// handed out again until `done`, then exactly once.
#[tokio::test(start_paused = true)]
async fn item_in_processing_is_requeued_after_done() {
    let q = WorkQueue::new(10);
    q.add(1).unwrap();
    assert_eq!(q.get().await, Some(1));
    q.add(1).unwrap();
    q.add(1).unwrap();
    assert_eq!(q.len(), 0, "dirty, not queued, while processing");
    assert!(q.get().now_or_never().is_none());
    q.done(&1);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get().await, Some(1));
    q.done(&1);
    assert!(q.is_empty());
    assert!(q.get().now_or_never().is_none());
}

#[tokio::test(start_paused = true)]
async fn add_after_waits_and_earliest_wins() {
    let q = WorkQueue::new(10);
    q.add_after("a", Duration::from_secs(10)).unwrap();
    q.add_after("b", Duration::from_secs(5)).unwrap();
    q.add_after("b", Duration::from_secs(1)).unwrap();
    q.add_after("b", Duration::from_secs(8)).unwrap();
    assert_eq!(q.len_waiting(), 2);
    assert!(q.get().now_or_never().is_none());
    tokio::time::advance(ms(999)).await;
    assert!(q.get().now_or_never().is_none());
    tokio::time::advance(ms(1)).await;
    assert_eq!(q.get().now_or_never(), Some(Some("b")));
    tokio::time::advance(Duration::from_secs(8)).await;
    assert!(q.get().now_or_never().is_none());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(q.get().now_or_never(), Some(Some("a")));
}

#[tokio::test(start_paused = true)]
async fn sleeping_worker_wakes_for_delayed_item() {
    let q = WorkQueue::new(10);
    let start = Instant::now();
    let worker = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    tokio::task::yield_now().await;
    q.add_after(7, Duration::from_secs(3)).unwrap();
    assert_eq!(worker.await.unwrap(), Some(7));
    // Virtual time: the item was not handed out before its delay.
    assert!(start.elapsed() >= Duration::from_secs(3));
}

/// client-go default_rate_limiters_test TestItemExponentialFailureRateLimiter.
#[test]
fn exponential_limiter_doubles_caps_and_forgets() {
    let mut r = ItemExponentialFailureRateLimiter::new(ms(1), Duration::from_secs(1));
    let got: Vec<Duration> = (0..5).map(|_| r.when(&"one")).collect();
    assert_eq!(got, [ms(1), ms(2), ms(4), ms(8), ms(16)]);
    assert_eq!(r.num_requeues(&"one"), 5);
    assert_eq!(r.when(&"two"), ms(1));
    for _ in 0..20 {
        r.when(&"one");
    }
    assert_eq!(r.when(&"one"), Duration::from_secs(1), "capped");
    for _ in 0..100 {
        r.when(&"one");
    }
    assert_eq!(
        r.when(&"one"),
        Duration::from_secs(1),
        "no overflow past 2^32"
    );
    r.forget(&"one");
    assert_eq!(r.num_requeues(&"one"), 0);
    assert_eq!(r.when(&"one"), ms(1));
}

/// Go `rate.Limiter` reservations: a burst of 100 is free, then one token per 100 ms.
#[tokio::test(start_paused = true)]
async fn bucket_limiter_burst_then_qps() {
    let mut r = BucketRateLimiter::new(10.0, 100);
    for i in 0..100 {
        assert_eq!(
            RateLimiter::<u32>::when(&mut r, &i),
            Duration::ZERO,
            "burst token {i}"
        );
    }
    let d1 = RateLimiter::<u32>::when(&mut r, &0);
    let d2 = RateLimiter::<u32>::when(&mut r, &0);
    assert!(d1.abs_diff(ms(100)) < ms(1), "{d1:?}");
    assert!(d2.abs_diff(ms(200)) < ms(1), "{d2:?}");
    // One virtual second refills 10 tokens, which pay back the 2 borrowed.
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..8 {
        assert_eq!(RateLimiter::<u32>::when(&mut r, &0), Duration::ZERO);
    }
    assert!(RateLimiter::<u32>::when(&mut r, &0) > Duration::ZERO);
}

/// client-go DefaultControllerRateLimiter: max(per-item 5 ms * 2^n, 10 qps bucket).
#[tokio::test(start_paused = true)]
async fn default_limiter_is_max_of_both() {
    let mut r = DefaultControllerRateLimiter::<u32>::default();
    assert_eq!(r.when(&1), ms(5));
    assert_eq!(r.when(&1), ms(10));
    assert_eq!(r.when(&1), ms(20));
    for i in 100..197 {
        r.when(&i);
    }
    // The bucket is empty now: a fresh item waits for the bucket, not 5 ms.
    let d = r.when(&2);
    assert!(d.abs_diff(ms(100)) < ms(1), "{d:?}");
    assert_eq!(r.num_requeues(&1), 3);
    r.forget(&1);
    assert_eq!(r.num_requeues(&1), 0);
    // Per-item backoff dominates once it is long: 5 ms * 2^17 = 655 s, capped at 1000 s.
    for _ in 0..17 {
        r.when(&3);
    }
    assert_eq!(r.when(&3), Duration::from_millis(5 << 17));
    assert_eq!(r.when(&3), Duration::from_secs(1000));
}

#[tokio::test(start_paused = true)]
async fn add_rate_limited_uses_limiter() {
    let q = WorkQueue::new(10);
    q.add_rate_limited("x").unwrap();
    assert_eq!(q.num_requeues(&"x"), 1);
    assert_eq!(q.len_waiting(), 1);
    tokio::time::advance(ms(5)).await;
    assert_eq!(q.get().now_or_never(), Some(Some("x")));
    q.add_rate_limited("x").unwrap();
    tokio::time::advance(ms(9)).await;
    assert_eq!(q.len_waiting(), 1);
    q.forget(&"x");
    assert_eq!(q.num_requeues(&"x"), 0);
}

#[tokio::test(start_paused = true)]
async fn bounded_length() {
    let q = WorkQueue::new(2);
    q.add("a").unwrap();
    q.add("b").unwrap();
    assert_eq!(q.add("c"), Err(QueueError::Full { max_len: 2 }));
    assert_eq!(q.add("a"), Ok(()), "re-adding a pending item is free");
    assert_eq!(
        q.add_after("c", ms(10)),
        Err(QueueError::Full { max_len: 2 })
    );
    assert_eq!(q.get().await, Some("a"));
    q.add_after("c", ms(10)).unwrap();
    assert_eq!(q.add("d"), Err(QueueError::Full { max_len: 2 }));
}

#[tokio::test(start_paused = true)]
async fn shut_down_drains_then_returns_none() {
    let q = WorkQueue::new(10);
    let idle = WorkQueue::<u32>::new(1);
    let worker = tokio::spawn({
        let idle = idle.clone();
        async move { idle.get().await }
    });
    tokio::task::yield_now().await;
    idle.shut_down();
    assert_eq!(
        worker.await.unwrap(),
        None,
        "a waiting worker wakes on shutdown"
    );

    q.add(1).unwrap();
    q.add(2).unwrap();
    q.add_after(3, ms(10)).unwrap();
    q.shut_down();
    assert!(q.is_shutting_down());
    assert_eq!(q.add(4), Err(QueueError::ShutDown));
    assert_eq!(q.add_rate_limited(4), Err(QueueError::ShutDown));
    assert_eq!(q.get().await, Some(1));
    assert_eq!(q.get().await, Some(2));
    assert_eq!(q.get().await, None, "delayed items are dropped at shutdown");
}

/// Many workers, many re-adds: no item is ever processed by two workers at once,
/// and every add is followed by at least one processing of the item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_one_worker_per_item() {
    let q = WorkQueue::<u32>::new(100);
    let active = Arc::new(StdMutex::new(HashSet::new()));
    let processed = Arc::new(StdMutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (q, active, processed) = (q.clone(), active.clone(), processed.clone());
        workers.push(tokio::spawn(async move {
            while let Some(item) = q.get().await {
                assert!(
                    active.lock().unwrap().insert(item),
                    "item {item} processed twice at once"
                );
                tokio::task::yield_now().await;
                active.lock().unwrap().remove(&item);
                processed.lock().unwrap().push(item);
                q.done(&item);
            }
        }));
    }
    for round in 0..50 {
        for item in 0..8 {
            q.add(item).unwrap();
        }
        if round % 5 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Drain: wait until nothing is queued or processing, then shut down.
    loop {
        let idle = {
            let st = q.lock();
            st.queue.is_empty() && st.processing.is_empty() && st.dirty.is_empty()
        };
        if idle {
            break;
        }
        tokio::task::yield_now().await;
    }
    q.shut_down();
    for w in workers {
        w.await.unwrap();
    }
    let processed = processed.lock().unwrap();
    for item in 0..8 {
        assert!(processed.contains(&item), "item {item} never processed");
    }
}
