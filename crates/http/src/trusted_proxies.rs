//! Whose `X-Forwarded-For` names a request's source
//! (`CALSYNC_TRUSTED_PROXIES`), for the webhooks' per-source rate limit.

use std::net::IpAddr;

/// Proxies whose `X-Forwarded-For` is believed (`CALSYNC_TRUSTED_PROXIES`):
/// addresses or CIDR ranges. Forwarded headers from anyone else are ignored,
/// since any client can write them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Comma-separated addresses and CIDR ranges; empty trusts no one.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid =
                || format!("'{entry}' is not an IP address or CIDR range (such as 10.0.0.0/8)");
            let (addr, bits) = match entry.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (entry, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(invalid)?,
                None => max,
            };
            nets.push((addr, bits));
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }

    /// The client's address: the connection's peer, or, when the peer is a
    /// trusted proxy, the nearest address in `X-Forwarded-For` that is not
    /// one (read from the right: the proxies append to it).
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.contains(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for hop in forwarded_for.unwrap_or_default().rsplit(',').take(16) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => client = ip,
                Ok(ip) => return Some(ip),
                Err(_) => break,
            }
        }
        Some(client)
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(Some(ip("203.0.113.7")), Some("1.2.3.4")),
            Some(ip("203.0.113.7")),
            "an untrusted peer's header is ignored"
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1, ::1").unwrap();
        assert_eq!(
            proxies.client_ip(Some(ip("10.1.2.3")), Some("198.51.100.9, 10.9.9.9")),
            Some(ip("198.51.100.9")),
            "the nearest untrusted hop"
        );
        assert_eq!(
            proxies.client_ip(Some(ip("10.1.2.3")), Some("spoofed, 198.51.100.9")),
            Some(ip("198.51.100.9")),
            "a client's own prefix is not believed"
        );
        assert_eq!(
            proxies.client_ip(Some(ip("10.1.2.3")), Some("not-an-ip")),
            Some(ip("10.1.2.3"))
        );
        assert_eq!(
            proxies.client_ip(Some(ip("192.168.1.2")), Some("1.2.3.4")),
            Some(ip("192.168.1.2")),
            "a /32 entry is one address"
        );
        assert!(proxies.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "nonsense", "::1/129", "1.2.3.4/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
    }
}
