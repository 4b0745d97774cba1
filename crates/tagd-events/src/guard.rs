//! The SSRF guard: webhook URLs are resolved here, and addresses a server must not call
//! (loopback, private, link-local, metadata; `tagd_core::webhooks::address_allowed`) are
//! dropped after resolution, so a name that resolves, or later re-resolves, to one is never
//! connected to. Redirects are not followed (a 3xx is a failed delivery).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use tagd_core::webhooks::address_allowed;

/// Resolves with the system resolver, keeping only allowed addresses.
pub(crate) struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| address_allowed(a.ip()))
                .collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves only to addresses this server does not call \
                     (loopback, private, link-local or metadata)"
                )
                .into();
                return Err(refused);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client deliveries go through: no redirects, the delivery timeout, and the
/// guarded resolver unless the operator allows private addresses.
pub(crate) fn client(
    settings: &tagd_core::webhooks::DeliverySettings,
) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve names itself, past the guard: deliveries go direct.
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("tagd-webhooks/", env!("CARGO_PKG_VERSION")));
    let builder = if settings.allow_private {
        builder
    } else {
        builder.dns_resolver(std::sync::Arc::new(GuardedResolver))
    };
    builder.build()
}

/// A URL whose host is an address literal skips resolution: it is checked here.
pub(crate) fn literal_refused(url: &str, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let ip: IpAddr = match parsed.host()? {
        url::Host::Ipv4(v4) => v4.into(),
        url::Host::Ipv6(v6) => v6.into(),
        url::Host::Domain(_) => return None,
    };
    (!address_allowed(ip))
        .then(|| format!("{ip} is a loopback, private, link-local or metadata address, not called"))
}
