"""Twilio's Messages API through the official SDK: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
form-encoded, basic auth AccountSid:AuthToken (the channel's `account_sid` credential and its secret).

The SDK is pointed at `LEDGER_PROVIDER_URL_TWILIO` by its HTTP client: a `TwilioHttpClient` that rewrites the
scheme and host of every URL the SDK builds, adds the Idempotency-Key header and keeps the raw answer, so
that the answer is classified from its status, headers (Retry-After) and body like every other provider's.
"""

import logging
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base import values
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ledger.providers import Delivery, ProviderAnswer
from ledger.providers._http import IDEMPOTENCY_KEY, base_url_problem, classify, no_answer, rejected, scrub, secrets_of

# The SDK logs each request's URL (with the account sid) and headers at INFO: keep that out of the ledger's logs.
SDK_LOGGER = logging.getLogger("ledger.providers.twilio.sdk")
SDK_LOGGER.setLevel(logging.WARNING)


class LedgerTwilioHttpClient(TwilioHttpClient):
    """One send's HTTP client: at the base URL, with the idempotency key and the timeout, keeping the answer."""

    def __init__(self, base_url: str | None, idempotency_key: str, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout, logger=SDK_LOGGER)
        self.base_url = base_url
        self.idempotency_key = idempotency_key
        self.last_response: Response | None = None

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, **kwargs):
        headers = {**(headers or {}), IDEMPOTENCY_KEY: self.idempotency_key}
        response = super().request(
            method, self.rebase(url), params=params, data=data, headers=headers, auth=auth, timeout=timeout, **kwargs
        )
        self.last_response = response
        return response

    def rebase(self, url: str) -> str:
        if self.base_url is None:
            return url
        base, target = urlsplit(self.base_url), urlsplit(url)
        path = base.path.rstrip("/") + target.path
        return urlunsplit((base.scheme, base.netloc, path, target.query, target.fragment))

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class TwilioProvider:
    kind = "twilio"

    def send(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        return scrub(self.call(delivery, base_url, timeout), delivery)

    def call(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        if problem := base_url_problem(self.kind, base_url, required=False):
            return rejected(problem)
        account_sid = delivery.credentials.get("account_sid")
        if not account_sid:
            return rejected("the channel has no Twilio account_sid")
        if not delivery.secret:
            return rejected("the channel has no Twilio auth token (its secret)")
        http = LedgerTwilioHttpClient(base_url, delivery.message_id, timeout)
        client = Client(username=account_sid, password=delivery.secret, account_sid=account_sid, http_client=http)
        try:
            message = client.api.v2010.accounts(account_sid).messages.create(
                to=delivery.to,
                from_=delivery.from_address,
                body=delivery.body,
                media_url=list(delivery.attachments) or values.unset,
                status_callback=delivery.status_url or values.unset,
            )
        except requests.RequestException as error:  # no answer: timeout, refused, reset
            return no_answer(error, timeout)
        except (TwilioException, ValueError, TypeError, AttributeError):
            # A non-2xx answer (TwilioRestException) or a 2xx the SDK could not read: classified from the raw answer.
            if http.last_response is None:
                raise
            message = None
        finally:
            http.close()
        response = http.last_response
        assert response is not None
        sid = getattr(message, "sid", None) if message is not None else None
        return classify(
            response.status_code, response.headers, response.text, sid or None, secrets=secrets_of(delivery)
        )


PROVIDER = TwilioProvider()
