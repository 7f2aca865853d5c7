"""Signs in with phone-verify the way a web application does, with authlib's OpenID
Connect client: discovery, an authorization URL with PKCE (S256) and a nonce, then,
with the callback URL the browser was sent to (read from standard input), the token
exchange, the ID token verified against the JWKS (signature, iss, aud, exp, nonce), and
userinfo."""
import sys
from urllib.parse import parse_qs, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt

issuer, client_id, client_secret, redirect_uri = sys.argv[1:5]

discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
assert discovery["issuer"] == issuer, discovery

client = OAuth2Session(
    client_id,
    client_secret,
    scope="openid phone",
    redirect_uri=redirect_uri,
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic",
)
verifier = generate_token(64)
nonce = generate_token(24)
url, state = client.create_authorization_url(
    discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
)
print("authorize", url, flush=True)

callback = sys.stdin.readline().strip()
query = parse_qs(urlparse(callback).query)
assert query["state"] == [state], query
assert query["iss"] == [issuer], query  # RFC 9207
print("redirect state and iss ok", flush=True)

token = client.fetch_token(
    discovery["token_endpoint"],
    authorization_response=callback,
    code_verifier=verifier,
    state=state,
)
keys = JsonWebKey.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())
claims = jwt.decode(
    token["id_token"],
    keys,
    claims_options={
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "exp": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
    },
)
claims.validate()
print("id_token verified: phone", claims["phone_number"], claims["phone_number_verified"], claims["amr"], flush=True)

info = client.get(discovery["userinfo_endpoint"], timeout=10).json()
print("userinfo", info["phone_number"], "same sub" if info["sub"] == claims["sub"] else "other sub", flush=True)
