//! The client's address: the TCP peer, or — only when the peer is one of the
//! configured `http.trusted_proxies` — the address those proxies forwarded
//! (`Forwarded: for=…`, else `X-Forwarded-For`). Headers from anyone else
//! are ignored, so a client cannot choose the address it is limited and
//! audited under.
use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use actix_web::web;

use crate::cidr::{Cidr, canonical};
use crate::state::AppState;

/// One `for=` value of `Forwarded` (RFC 7239) or one `X-Forwarded-For`
/// entry: an address, maybe quoted, bracketed or with a port.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let v = raw.trim().trim_matches('"');
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    v.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse::<IpAddr>().ok())
        .map(canonical)
}

/// The forwarded chain, client first: `Forwarded`'s `for=` values when
/// present, else `X-Forwarded-For`. `None` stands for an entry that is not
/// an address (`unknown`, obfuscated names).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<Option<IpAddr>> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| parse_node(v))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// The client address of a connection from `peer` with `headers`: the peer
/// itself unless it is a trusted proxy; then, walking the forwarded chain
/// from the nearest hop, the first address that is not a trusted proxy (an
/// unreadable entry stops the walk at the last trusted hop).
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// The client address of a request (see [`resolve`]), `None` when the
/// connection has no peer address.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.http.trusted_proxies.as_slice())
        .unwrap_or_default();
    Some(resolve(peer, req.headers(), trusted))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter()
            .map(|s| Cidr::try_from((*s).to_owned()).unwrap())
            .collect()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cidr_ranges() {
        let c = cidrs(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]);
        assert!(c[0].contains("10.200.1.1".parse().unwrap()));
        assert!(c[0].contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c[0].contains("11.0.0.1".parse().unwrap()));
        assert!(c[1].contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!c[1].contains("2001:db9::1".parse().unwrap()));
        assert!(c[2].contains("192.0.2.1".parse().unwrap()));
        assert!(!c[2].contains("192.0.2.2".parse().unwrap()));
        assert!(Cidr::try_from("10.0.0.0/33".to_owned()).is_err());
        assert!(Cidr::try_from("proxy.internal".to_owned()).is_err());
        assert_eq!(String::from(c[0]), "10.0.0.0/8");
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let spoof = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(resolve(stranger, &spoof, &trusted), stranger);
        assert_eq!(resolve(stranger, &spoof, &[]), stranger);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            resolve(proxy, &spoof, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // A client-supplied entry left of the real one is not believed.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(
            resolve(proxy, &chain, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // `Forwarded` wins over `X-Forwarded-For`.
        let both = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::17]:4711\";proto=https, for=10.0.0.9",
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            resolve(proxy, &both, &trusted),
            "2001:db8::17".parse::<IpAddr>().unwrap()
        );
        // An unreadable hop stops at the last trusted one.
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(resolve(proxy, &unknown, &trusted), proxy);
        // No header: the proxy itself.
        assert_eq!(resolve(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
