//! A hub callback is a URL given by a stranger: before Paddock calls it,
//! its host is resolved and every address it resolves to must be public
//! (unless `[websub].allow_private_callbacks`); the call then goes to those
//! vetted addresses only, never following a redirect.

use std::net::{IpAddr, SocketAddr};

use url::Url;

/// Resolves `callback`'s host and returns its addresses, or why Paddock
/// will not call it.
pub async fn vet(callback: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    if !matches!(callback.scheme(), "http" | "https") {
        return Err("the callback must be an http or https URL".into());
    }
    let host = callback.host_str().ok_or("the callback has no host")?;
    let port = callback
        .port_or_known_default()
        .ok_or("the callback has no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("the callback's host does not resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err("the callback's host resolves to no address".into());
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "the callback resolves to {}, which is not a public address (loopback, private, link-local and multicast callbacks are refused)",
            bad.ip()
        ));
    }
    Ok(addrs)
}

/// Whether an address is on the public internet: not loopback, private,
/// shared (CGNAT), link-local, multicast, broadcast, documentation,
/// benchmarking or unspecified, in IPv4 or IPv6 (IPv4-mapped included).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
            "198.18.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }

    #[tokio::test]
    async fn loopback_callbacks_are_refused_unless_allowed() {
        let url = Url::parse("http://127.0.0.1:9/cb").unwrap();
        let refused = vet(&url, false).await.unwrap_err();
        assert!(refused.contains("not a public address"), "{refused}");
        assert_eq!(
            vet(&url, true).await.unwrap()[0].ip().to_string(),
            "127.0.0.1"
        );
        let ftp = Url::parse("ftp://example.com/").unwrap();
        assert!(vet(&ftp, true).await.is_err());
        let localhost = Url::parse("http://localhost:9/").unwrap();
        assert!(
            vet(&localhost, false).await.is_err(),
            "a name is judged by what it resolves to"
        );
    }
}
