//! Unit tests of the state store: merge, watermarks, anti-entropy and collection.

use super::*;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;

fn cfg() -> StateConfig {
    StateConfig::default()
}

fn name(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

/// Merges a remote write whose sequence number equals its version.
fn ap(
    s: &mut StateStore,
    c: &StateConfig,
    ty: &str,
    key: &str,
    version: u64,
    origin: &str,
    value: Option<&[u8]>,
) -> Applied {
    apply_w(
        s,
        c,
        &W {
            ty: ty.into(),
            key: key.into(),
            version,
            seq: version,
            origin: origin.into(),
            value: value.map(<[u8]>::to_vec),
        },
    )
}

fn apply_w(s: &mut StateStore, c: &StateConfig, w: &W) -> Applied {
    let write = Write {
        ty: &w.ty,
        key: &w.key,
        version: w.version,
        seq: w.seq,
        origin: &w.origin,
        value: w.value.as_deref(),
    };
    s.apply(c, &name("local"), write, true, Instant::ZERO)
}

/// A write as the tests build it.
#[derive(Clone, Debug)]
struct W {
    ty: String,
    key: String,
    version: u64,
    seq: u64,
    origin: String,
    value: Option<Vec<u8>>,
}

/// A valid history: three origins write keys of two types; each origin numbers its writes
/// of a type 1, 2, 3... and versions grow (ties between origins allowed), as Lamport clocks
/// and the sequence rule produce them.
fn history() -> impl Strategy<Value = Vec<W>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["a", "b"]),
            0..4u8,
            0..2u64,
            0..3u8,
            prop::option::of(prop::collection::vec(any::<u8>(), 0..4)),
        ),
        0..24,
    )
    .prop_map(|raw| {
        let mut version = 0;
        let mut seqs = alloc::collections::BTreeMap::new();
        raw.into_iter()
            .map(|(ty, k, bump, o, value)| {
                version += bump;
                let seq = seqs.entry((ty, o)).or_insert(0u64);
                *seq += 1;
                W {
                    ty: ty.into(),
                    key: format!("k{k}"),
                    version: version.max(1),
                    seq: *seq,
                    origin: format!("n{o}"),
                    value,
                }
            })
            .collect()
    })
}

fn merged(writes: &[W]) -> StateStore {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    for w in writes {
        apply_w(&mut s, &cfg(), w);
    }
    s.check_invariants(&cfg());
    s
}

fn contents(s: &StateStore) -> Vec<(StateKey, StateEntry)> {
    s.iter().map(|(k, e)| (k.clone(), e.clone())).collect()
}

proptest! {
    /// Commutativity: the merge of a set of writes does not depend on their order.
    #[test]
    fn merge_is_commutative(writes in history(), seed in any::<u64>()) {
        let mut shuffled = writes.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(contents(&merged(&writes)), contents(&merged(&shuffled)));
    }

    /// Associativity: merging a with (b merged with c) equals (a with b) with c; with a
    /// state-based merge this is merging the winners of each part.
    #[test]
    fn merge_is_associative(
        writes in history(),
        cut in any::<(prop::sample::Index, prop::sample::Index)>(),
    ) {
        // Three parts of one history, delivered to different replicas.
        let (mut i, mut j) = (cut.0.index(writes.len() + 1), cut.1.index(writes.len() + 1));
        if i > j {
            core::mem::swap(&mut i, &mut j);
        }
        let (a, b, c) = (writes[..i].to_vec(), writes[i..j].to_vec(), writes[j..].to_vec());
        let winners = |s: &StateStore| -> Vec<W> {
            s.iter().map(|(k, e)| W {
                ty: k.ty().into(),
                key: k.key().into(),
                version: e.version,
                seq: s.get_with_seq(k.ty(), k.key()).unwrap().1,
                origin: e.origin.as_str().into(),
                value: e.value.as_deref().map(<[u8]>::to_vec),
            }).collect()
        };
        let bc = merged(&[b.clone(), c.clone()].concat());
        let left = merged(&[a.clone(), winners(&bc)].concat());
        let ab = merged(&[a, b].concat());
        let right = merged(&[winners(&ab), c].concat());
        prop_assert_eq!(contents(&left), contents(&right));
    }

    /// Idempotence: merging the same writes again changes nothing.
    #[test]
    fn merge_is_idempotent(writes in history()) {
        let once = merged(&writes);
        let twice = merged(&[writes.clone(), writes].concat());
        prop_assert_eq!(contents(&once), contents(&twice));
        prop_assert_eq!(once.fingerprint(), twice.fingerprint());
    }
}

#[test]
fn greater_stamp_wins_and_ties_break_by_origin() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let c = cfg();
    assert!(matches!(
        ap(&mut s, &c, "t", "k", 5, "b", Some(b"1")),
        Applied::Changed(None)
    ));
    assert_eq!(
        ap(&mut s, &c, "t", "k", 4, "z", Some(b"2")),
        Applied::NotNewer
    );
    assert!(matches!(
        ap(&mut s, &c, "t", "k", 5, "c", Some(b"3")),
        Applied::Changed(Some(_))
    ));
    assert_eq!(s.get("t", "k").unwrap().origin.as_str(), "c");
    assert_eq!(s.clock(), 5, "Lamport: the clock follows the versions seen");
}

#[test]
fn below_the_watermark_an_unknown_key_is_stale() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let c = cfg();
    s.raise_watermark(&c, "t", "o", 10, true).unwrap();
    assert_eq!(
        ap(&mut s, &c, "t", "gone", 7, "o", Some(b"old")),
        Applied::Stale
    );
    assert!(matches!(
        ap(&mut s, &c, "t", "new", 11, "o", Some(b"v")),
        Applied::Changed(None)
    ));
}

#[test]
fn tombstones_are_collected_only_once_covered_by_the_watermark() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let mut c = cfg();
    let ttl = Duration::from_secs(10);
    c.tombstone_ttl = ttl;
    ap(&mut s, &c, "t", "k", 3, "o", None);
    assert_eq!(s.collect(Instant::from_secs(11), ttl), 0, "not covered yet");
    s.raise_watermark(&c, "t", "o", 3, true).unwrap();
    assert_eq!(s.collect(Instant::from_secs(30), ttl), 1);
    assert_eq!(s.len(), 0);
    s.check_invariants(&c);
    // A stale copy of the deleted value is recognised.
    assert_eq!(
        ap(&mut s, &c, "t", "k", 2, "o", Some(b"old")),
        Applied::Stale
    );
}

#[test]
fn deltas_are_prefixes_above_the_peer_watermark_freshest_origin_first() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let c = cfg();
    let ttl = Duration::from_secs(60);
    for i in 0..5 {
        let value: Arc<[u8]> = vec![0u8; 40].into();
        s.write_local(
            &name("me"),
            "t",
            &format!("k{i}"),
            Some(value),
            Instant::ZERO,
            ttl,
        );
    }
    ap(&mut s, &c, "t", "x", 100, "other", Some(b"w"));
    let (groups, resets) = s.deltas(&c, &[(("t", "me"), 2)], 1 << 20);
    assert!(resets.is_empty());
    assert_eq!(groups[0].origin, "other", "freshest writes first");
    assert_eq!(groups[0].watermark, 0, "we hold no watermark for `other`");
    let mine = &groups[1];
    let versions: Vec<u64> = mine.entries.iter().map(|e| e.1).collect();
    assert_eq!(versions, [3, 4, 5]);
    assert_eq!(mine.watermark, 5);
    // A tight budget cuts the group to a prefix and lowers the watermark to match.
    let (groups, _) = s.deltas(&c, &[(("t", "me"), 2), (("t", "other"), 1000)], 100);
    assert_eq!(groups[0].entries.len(), 1);
    assert_eq!(groups[0].watermark, 3);
}

// ---------------------------------------------------------------- abuse bounds (issue 13)

fn apply_as(s: &mut StateStore, c: &StateConfig, key: &str, origin: &str, member: bool) -> Applied {
    // The origin's next write: next sequence number, next Lamport time.
    let write = Write {
        ty: "t",
        key,
        version: s.clock() + 1,
        seq: s.watermark("t", origin) + 1,
        origin,
        value: Some(b"v"),
    };
    s.apply(c, &name("local"), write, member, Instant::ZERO)
}

#[test]
fn a_stamp_from_the_future_is_refused_and_moves_nothing() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let c = cfg();
    ap(&mut s, &c, "t", "k", 5, "o", Some(b"honest"));
    assert_eq!(
        ap(&mut s, &c, "t", "k", u64::MAX, "x", Some(b"forged")),
        Applied::Refused(Refusal::Future)
    );
    assert_eq!(s.clock(), 5, "the clock did not jump");
    assert_eq!(
        s.get("t", "k").unwrap().value.as_deref(),
        Some(&b"honest"[..])
    );
    // A later honest write of the key still wins.
    assert!(matches!(
        ap(&mut s, &c, "t", "k", 6, "o", Some(b"later")),
        Applied::Changed(Some(_))
    ));
    // A forged watermark that would turn the origin's next writes away is refused too.
    assert_eq!(
        s.raise_watermark(&c, "t", "o", u64::MAX, true),
        Err(Refusal::Future)
    );
    assert!(matches!(
        ap(&mut s, &c, "t", "k2", 7, "o", Some(b"next")),
        Applied::Changed(None)
    ));
    s.check_invariants(&c);
}

#[test]
fn one_origin_cannot_take_more_than_its_share() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let mut c = cfg();
    c.max_entries = 20;
    c.origin_share_percent = 25;
    for i in 0..5 {
        assert!(matches!(
            apply_as(&mut s, &c, &format!("k{i}"), "greedy", true),
            Applied::Changed(None)
        ));
    }
    assert_eq!(
        apply_as(&mut s, &c, "k5", "greedy", true),
        Applied::Refused(Refusal::Quota)
    );
    assert!(matches!(
        apply_as(&mut s, &c, "other", "fair", true),
        Applied::Changed(None)
    ));
    // This node's own publishes are held to the same share.
    for i in 0..5 {
        s.check_room(&c, "t", &format!("mine{i}"), 1).unwrap();
        s.write_local(
            &name("local"),
            "t",
            &format!("mine{i}"),
            Some(b"v"[..].into()),
            Instant::ZERO,
            c.tombstone_ttl,
        );
    }
    assert!(matches!(
        s.check_room(&c, "t", "mine5", 1),
        Err(StateError::OriginQuota { max_entries: 5, .. })
    ));
    s.check_invariants(&c);
}

#[test]
fn non_members_share_a_small_part_and_expire() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let mut c = cfg();
    c.max_entries = 100;
    c.non_member_share_percent = 10;
    for i in 0..10 {
        assert!(matches!(
            apply_as(&mut s, &c, &format!("j{i}"), &format!("forged{i}"), false),
            Applied::Changed(None)
        ));
    }
    assert_eq!(s.take_fresh_guests().len(), 10);
    assert_eq!(
        apply_as(&mut s, &c, "j10", "forged10", false),
        Applied::Refused(Refusal::NonMember)
    );
    // Members are unaffected.
    assert!(matches!(
        apply_as(&mut s, &c, "real", "member", true),
        Applied::Changed(None)
    ));
    // A non-member that turns out to be a member moves out of the share.
    s.set_member("forged0", true);
    assert!(matches!(
        apply_as(&mut s, &c, "j10", "forged10", false),
        Applied::Changed(None)
    ));
    // Expiry deletes a non-member's entries and keeps its watermark (stale copies stay out).
    assert!(s.watch("forged1", Instant::from_secs(5)));
    assert!(!s.take_check("forged1", Instant::from_secs(4)));
    assert!(s.take_check("forged1", Instant::from_secs(5)));
    let gone = s.expire_origin(&name("forged1"));
    assert_eq!(gone.len(), 1);
    assert_eq!(
        ap(&mut s, &c, "t", "j1", 1, "forged1", Some(b"v")),
        Applied::Stale
    );
    s.check_invariants(&c);
}

#[test]
fn max_origins_holds_at_admission_evicting_empty_marks_first() {
    let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
    let mut c = cfg();
    c.max_origins = 16;
    c.non_member_share_percent = 100;
    // Watermarks alone (no entries) are evictable.
    for i in 0..16 {
        s.raise_watermark(&c, "t", &format!("w{i}"), 1, false)
            .unwrap();
    }
    assert_eq!(s.origins(), 16);
    for i in 0..16 {
        assert!(matches!(
            apply_as(&mut s, &c, &format!("k{i}"), &format!("o{i}"), true),
            Applied::Changed(None)
        ));
        s.check_invariants(&c);
    }
    assert_eq!(s.origins(), 16, "the empty marks made room");
    // Every mark now holds an entry: a new origin is refused, at no scan.
    assert_eq!(
        apply_as(&mut s, &c, "k99", "o99", true),
        Applied::Refused(Refusal::Origins)
    );
    assert_eq!(
        s.raise_watermark(&c, "t", "o99", 1, true),
        Err(Refusal::Origins)
    );
    s.check_invariants(&c);
}
