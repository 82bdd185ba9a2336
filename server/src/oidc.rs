//! Single sign-on with OpenID Connect (the `openidconnect` crate): the authorization-code flow
//! with PKCE and a nonce. The provider is discovered on first use (and again after a failure);
//! the state, PKCE verifier and nonce travel in a short-lived HttpOnly cookie, so any instance
//! of a fleet can finish a sign-in another began. A person is matched to a user by e-mail, and
//! only when the provider says the address is verified.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use std::sync::Arc;
use tokio::sync::RwLock;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider as configured; its metadata and keys once discovered.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect: String,
    /// Never follows redirects: a provider cannot send Gatehouse's requests elsewhere.
    http: reqwest::Client,
    /// The provider's metadata and keys, discovered again when a token's key is not among
    /// them (the provider rotated its keys).
    client: RwLock<Option<Arc<Client>>>,
}

/// A sign-in begun: where to send the browser, and what the cookie keeps for the way back.
pub struct Started {
    pub url: String,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

/// Who the provider says signed in.
pub struct Person {
    pub email: Option<String>,
    pub email_verified: bool,
}

impl Oidc {
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: String,
        redirect: String,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Self {
            issuer,
            client_id,
            client_secret,
            redirect,
            http,
            client: RwLock::new(None),
        })
    }

    /// The provider as discovered; `fresh`: discovered again now.
    async fn client(&self, fresh: bool) -> Result<Arc<Client>, String> {
        if !fresh {
            if let Some(client) = self.client.read().await.as_ref() {
                return Ok(client.clone());
            }
        }
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| format!("cannot discover the provider: {e}"))?;
        let redirect = RedirectUrl::new(self.redirect.clone()).map_err(|e| e.to_string())?;
        let client = Arc::new(
            CoreClient::from_provider_metadata(
                metadata,
                ClientId::new(self.client_id.clone()),
                Some(ClientSecret::new(self.client_secret.clone())),
            )
            .set_redirect_uri(redirect),
        );
        *self.client.write().await = Some(client.clone());
        Ok(client)
    }

    /// Where to send the browser to sign in.
    pub async fn start(&self) -> Result<Started, String> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_string()))
            .add_scope(Scope::new("profile".to_string()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Trades the code for an ID token and checks it (signature, issuer, audience, expiry,
    /// nonce).
    pub async fn finish(
        &self,
        code: &str,
        verifier: String,
        nonce: String,
    ) -> Result<Person, String> {
        let client = self.client(false).await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| format!("the provider has no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the provider refused the code: {e}"))?;
        let token = response
            .id_token()
            .ok_or_else(|| "the provider sent no ID token".to_string())?;
        let nonce = Nonce::new(nonce);
        let claims = match token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            // Signed with a key the provider has rotated in since? Discover again, once.
            Err(first) => {
                let client = self.client(true).await?;
                let verifier = client.id_token_verifier();
                let claims = token
                    .claims(&verifier, &nonce)
                    .map_err(|e| format!("the ID token does not check out: {e} (first: {first})"))?
                    .clone();
                claims
            }
        };
        Ok(Person {
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified() == Some(true),
        })
    }
}
