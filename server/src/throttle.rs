//! Throttling failed authentication, per client address and per account (the admin account,
//! a virtual key's id, a person's sign-in): past a number of failures in a minute, further
//! failures are refused with a time to wait.
//!
//! Correct callers are never slowed. A key (the admin key, a virtual key) or a session that is
//! valid is answered whatever its address or account has failed: keys are checked first, and
//! only a wrong one meets the throttle (401, then 429 once its address or account is over the
//! limit). A password is different: it can be guessed, so a sign-in is checked against the
//! throttle before its password is, per address and per account (an account under attack
//! stays open to the addresses that recently signed in to it). A success forgives nothing but
//! its own account's failures. Wrong keys and failed sign-ins are counted apart per address:
//! a script with a stale key behind a shared address does not keep people from signing in.
//! The address is the socket's peer, or the client named in `X-Forwarded-For` when the peer is
//! a trusted proxy (see [`client_address`]).

use crate::gate::clock::Clock;
use axum::http::HeaderMap;
use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    str::FromStr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex, RwLock,
    },
};

/// The window failures are counted in.
const WINDOW_SECS: i64 = 60;
/// How long a correct sign-in keeps an address trusted for its account.
const TRUSTED_SECS: i64 = 24 * 3600;
/// Addresses, accounts or trusted pairs remembered at most (each map): a flood of addresses
/// cannot grow memory without bound.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failed attempts from one address per minute (of one kind) before it must wait.
    pub per_address: usize,
    /// Failed attempts on one account per minute (from anywhere) before addresses it does not
    /// trust must wait.
    pub per_account: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_address: 20,
            per_account: 100,
        }
    }
}

/// What a failure was: a wrong key (or session, or link), or a failed sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guess {
    /// A key, a session cookie: checked before the throttle, so only wrong ones meet it.
    Key,
    /// A password, an invitation link, a single sign-on answer: checked after the throttle.
    SignIn,
    /// The admin key, chosen by its operator and so guessable: from an address that has not
    /// used it in the last day, checked after the throttle, like a password.
    AdminKey,
}

#[derive(Default)]
struct State {
    addresses: HashMap<(Guess, IpAddr), VecDeque<i64>>,
    /// Apart per kind: a flood of made-up key ids cannot push out the sign-ins' counts.
    accounts: HashMap<(Guess, String), VecDeque<i64>>,
}

const GUESSES: [Guess; 3] = [Guess::Key, Guess::SignIn, Guess::AdminKey];

/// Address → account → until when the address is trusted for the account.
type Trusted = HashMap<IpAddr, HashMap<String, i64>>;

pub struct Throttle {
    state: Mutex<State>,
    trusted: RwLock<Trusted>,
    /// Whether any failure is being tracked: the common case takes no lock.
    tracking: AtomicBool,
    limits: Limits,
    clock: Clock,
}

/// Drops failures that have left the window; answers the seconds until one more is allowed
/// when `limit` are still in it.
fn wait(failures: &mut VecDeque<i64>, limit: usize, now: i64) -> Option<u64> {
    while failures.front().is_some_and(|t| *t <= now - WINDOW_SECS) {
        failures.pop_front();
    }
    let oldest = *failures.front()?;
    (failures.len() >= limit).then(|| {
        u64::try_from(oldest + WINDOW_SECS - now)
            .unwrap_or(1)
            .max(1)
    })
}

fn record(failures: &mut VecDeque<i64>, limit: usize, now: i64) {
    failures.push_back(now);
    while failures.len() > limit {
        failures.pop_front();
    }
}

impl Throttle {
    pub fn new(limits: Limits, clock: Clock) -> Self {
        Self {
            state: Mutex::new(State::default()),
            trusted: RwLock::new(Trusted::new()),
            tracking: AtomicBool::new(false),
            limits,
            clock,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(seconds to wait)` when this address (for this kind of guess), or this account from
    /// an address it does not trust, has failed too often. A sign-in asks before its password
    /// is checked; a key asks only once it turned out wrong (see [`Self::failure`]).
    pub fn check(&self, guess: Guess, address: IpAddr, account: Option<&str>) -> Result<(), u64> {
        if !self.tracking.load(Ordering::Relaxed) {
            return Ok(());
        }
        let now = self.clock.now_secs();
        let mut state = self.state();
        self.verdict(&mut state, guess, address, account, now)
    }

    fn verdict(
        &self,
        state: &mut State,
        guess: Guess,
        address: IpAddr,
        account: Option<&str>,
        now: i64,
    ) -> Result<(), u64> {
        if let Some(failures) = state.addresses.get_mut(&(guess, address)) {
            if let Some(retry) = wait(failures, self.limits.per_address, now) {
                return Err(retry);
            }
        }
        let Some(account) = account else {
            return Ok(());
        };
        if self.trusted_until(address, account) > now {
            return Ok(());
        }
        match state.accounts.get_mut(&(guess, account.to_string())) {
            Some(failures) => match wait(failures, self.limits.per_account, now) {
                Some(retry) => Err(retry),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// A credential was wrong: counted for the address and the account. `Err(seconds to
    /// wait)` when they had failed too often already (the caller answers 429, not 401).
    pub fn failure(&self, guess: Guess, address: IpAddr, account: Option<&str>) -> Result<(), u64> {
        let now = self.clock.now_secs();
        let mut state = self.state();
        if state.addresses.len() >= MAX_TRACKED || state.accounts.len() >= MAX_TRACKED {
            prune(&mut state, now);
        }
        let verdict = self.verdict(&mut state, guess, address, account, now);
        let limit = self.limits.per_address;
        record(
            state.addresses.entry((guess, address)).or_default(),
            limit,
            now,
        );
        // An address already refused adds no account: it cannot fill the map.
        if let (Some(account), Ok(())) = (account, verdict) {
            let limit = self.limits.per_account;
            record(
                state
                    .accounts
                    .entry((guess, account.to_string()))
                    .or_default(),
                limit,
                now,
            );
        }
        self.tracking.store(true, Ordering::Relaxed);
        verdict
    }

    fn trusted_until(&self, address: IpAddr, account: &str) -> i64 {
        self.trusted
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&address)
            .and_then(|accounts| accounts.get(account))
            .copied()
            .unwrap_or(i64::MIN)
    }

    /// Whether the address proved this account's credential in the last day.
    pub fn trusts(&self, address: IpAddr, account: &str) -> bool {
        self.trusted_until(address, account) > self.clock.now_secs()
    }

    /// A credential was right: its account's failures are forgiven (nobody else's, and not
    /// the address's).
    pub fn success(&self, account: Option<&str>) {
        let Some(account) = account else { return };
        if self.tracking.load(Ordering::Relaxed) {
            let mut state = self.state();
            for guess in GUESSES {
                state.accounts.remove(&(guess, account.to_string()));
            }
            if state.addresses.is_empty() && state.accounts.is_empty() {
                self.tracking.store(false, Ordering::Relaxed);
            }
        }
    }

    /// A sign-in succeeded: as [`Self::success`], and the address stays trusted for the
    /// account (should the account come under attack) for a day.
    pub fn signed_in(&self, address: IpAddr, account: &str) {
        self.success(Some(account));
        let now = self.clock.now_secs();
        // Refreshed at most hourly: the common case is one read lock.
        if self.trusted_until(address, account) > now + TRUSTED_SECS - 3600 {
            return;
        }
        let mut trusted = self
            .trusted
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if trusted.len() >= MAX_TRACKED {
            trusted.retain(|_, accounts| {
                accounts.retain(|_, until| *until > now);
                !accounts.is_empty()
            });
            if trusted.len() >= MAX_TRACKED {
                trusted.clear();
            }
        }
        trusted
            .entry(address)
            .or_default()
            .insert(account.to_string(), now + TRUSTED_SECS);
    }
}

/// Forgets what has left the window; if that is not enough, forgets everything (an attacker
/// with that many addresses gains a minute, memory stays bounded).
fn prune(state: &mut State, now: i64) {
    state
        .addresses
        .retain(|_, f| f.back().is_some_and(|t| *t > now - WINDOW_SECS));
    state
        .accounts
        .retain(|_, f| f.back().is_some_and(|t| *t > now - WINDOW_SECS));
    if state.addresses.len() >= MAX_TRACKED {
        state.addresses.clear();
    }
    if state.accounts.len() >= MAX_TRACKED {
        state.accounts.clear();
    }
}

/// A network in CIDR notation (`10.0.0.0/8`, `::1/128`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an address or a network like 10.0.0.0/8");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { address, prefix })
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let prefix = u32::from(self.prefix);
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client a request comes from: the socket's peer, unless the peer is a trusted proxy;
/// then the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
/// The address a client's share of connections and streams is counted by: its own for IPv4,
/// its /64 for IPv6 (a host is usually given a whole /64, and can pick any address in it).
pub fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
    }
}

pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[Network]) -> IpAddr {
    let peer = peer.ip().to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64() {
        assert_eq!(counted_as(ip("10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(counted_as(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(counted_as(ip("2001:db8:1:2:ffff::9")), ip("2001:db8:1:2::"));
        assert_ne!(counted_as(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(counted_as(ip("::ffff:10.0.0.7")), ip("10.0.0.7"));
    }

    #[test]
    fn an_address_waits_after_its_failures_and_only_its_own_account_is_forgiven() {
        let clock = Clock::manual(1_000_000);
        let throttle = Throttle::new(
            Limits {
                per_address: 3,
                per_account: 100,
            },
            clock.clone(),
        );
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(throttle.check(Guess::SignIn, a, None), Ok(()));
            assert_eq!(throttle.failure(Guess::SignIn, a, None), Ok(()));
        }
        assert_eq!(throttle.check(Guess::SignIn, a, None), Err(60));
        assert_eq!(throttle.failure(Guess::SignIn, a, None), Err(60));
        // Wrong keys are counted apart from failed sign-ins.
        assert_eq!(throttle.check(Guess::Key, a, None), Ok(()));
        assert_eq!(throttle.check(Guess::SignIn, ip("192.0.2.2"), None), Ok(()));
        clock.advance(30_000);
        assert_eq!(throttle.check(Guess::SignIn, a, None), Err(30));
        clock.advance(30_001);
        assert_eq!(throttle.check(Guess::SignIn, a, None), Ok(()));
        // A success forgives its own account, never the address.
        for _ in 0..3 {
            let _ = throttle.failure(Guess::SignIn, a, Some("user:mallory"));
        }
        throttle.signed_in(a, "user:mallory");
        assert!(throttle.check(Guess::SignIn, a, None).is_err());
    }

    /// Made-up key ids, as many as the map holds, cannot wipe an attacked account's count.
    #[test]
    fn a_flood_of_made_up_accounts_forgets_no_attacked_account() {
        let clock = Clock::manual(1_000_000);
        let throttle = Throttle::new(
            Limits {
                per_address: 20,
                per_account: 5,
            },
            clock,
        );
        for i in 0..5 {
            let _ = throttle.failure(
                Guess::SignIn,
                ip(&format!("203.0.113.{i}")),
                Some("user:ann"),
            );
        }
        let flooder = ip("198.51.100.1");
        for i in 0..MAX_TRACKED + 10 {
            let _ = throttle.failure(Guess::Key, flooder, Some(&format!("key{i:0>12}")));
        }
        assert!(throttle
            .check(Guess::SignIn, ip("203.0.113.99"), Some("user:ann"))
            .is_err());
    }

    #[test]
    fn an_attacked_account_stays_open_to_addresses_it_trusts() {
        let clock = Clock::manual(1_000_000);
        let throttle = Throttle::new(
            Limits {
                per_address: 1000,
                per_account: 5,
            },
            clock,
        );
        let owner = ip("198.51.100.7");
        let _ = throttle.failure(Guess::SignIn, owner, Some("user:ann"));
        throttle.signed_in(owner, "user:ann");
        for i in 0..5 {
            let _ = throttle.failure(
                Guess::SignIn,
                ip(&format!("203.0.113.{i}")),
                Some("user:ann"),
            );
        }
        let stranger = ip("203.0.113.99");
        assert!(throttle
            .check(Guess::SignIn, stranger, Some("user:ann"))
            .is_err());
        assert_eq!(
            throttle.check(Guess::SignIn, owner, Some("user:ann")),
            Ok(())
        );
        assert_eq!(
            throttle.check(Guess::SignIn, stranger, Some("user:bob")),
            Ok(())
        );
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted: Vec<Network> = vec!["10.0.0.0/8".parse().expect("net")];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1, 10.1.2.3"
                .parse()
                .expect("header"),
        );
        let behind = SocketAddr::new(ip("10.9.9.9"), 1);
        assert_eq!(
            client_address(behind, &headers, &trusted),
            ip("198.51.100.1")
        );
        let direct = SocketAddr::new(ip("192.0.2.5"), 1);
        assert_eq!(client_address(direct, &headers, &trusted), ip("192.0.2.5"));
        assert!("::1".parse::<Network>().expect("net").contains(ip("::1")));
        assert!(!"10.0.0.0/8"
            .parse::<Network>()
            .expect("net")
            .contains(ip("11.0.0.1")));
        assert!("0.0.0.0/0"
            .parse::<Network>()
            .expect("net")
            .contains(ip("8.8.8.8")));
        assert!("bad/99".parse::<Network>().is_err());
    }
}
