//! A token endpoint that names each token for what it was asked (its audience, else its
//! scope), so that a test can tell from the `Authorization` an API received which token
//! request it came from; and the list of what each token request asked for.

use tower_client_credentials::{ConfigBuilder, TokenParams};

use super::{Received, Reply, TokenServer};

/// A token endpoint whose `n`th token is `<audience or scope>-<n>` (`big-<n>` for a long one),
/// valid for an hour.
pub async fn naming_token_server() -> TokenServer {
    TokenServer::start_judging(|n, received| {
        let what = received.param("audience").or(received.param("scope")).unwrap_or("default");
        let what = if what.len() > 64 { "big" } else { what };
        let token = format!("{}-{n}", what.replace(' ', "+"));
        Reply::json(
            200,
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#),
        )
    })
    .await
}

/// What each token request asked for (audience, else scope, else `default`), in order.
pub fn asked(tokens: &TokenServer) -> Vec<String> {
    let what =
        |r: &Received| r.param("audience").or(r.param("scope")).unwrap_or("default").to_owned();
    tokens.received().iter().map(what).collect()
}

/// `builder` with a route for `<origin>/orders` (audience `orders`) and one for
/// `<origin>/billing` (audience `billing`): two APIs behind one gateway.
pub fn orders_and_billing(builder: ConfigBuilder, origin: &str) -> ConfigBuilder {
    builder
        .route(format!("{origin}/orders"), TokenParams::new().audience("orders"))
        .route(format!("{origin}/billing"), TokenParams::new().audience("billing"))
}
