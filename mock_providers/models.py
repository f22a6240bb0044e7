"""The JSON shapes of the mock: the control endpoints' bodies and the JSON providers' requests and answers."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["429", "500", "timeout", "400"]
InboundKind = Literal["sms", "email", "whatsapp", "twilio", "intercom"]
TwilioStatus = Literal[
    "queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "accepted", "scheduled", "canceled"
]


class Control(BaseModel):
    """A control body: unknown keys are a typo, so they are refused (422) rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class FaultConfig(Control):
    """`PUT /_faults`: `next` fails the next new calls in order; else `rate` picks among `kinds` at random."""

    next: list[FaultKind] = []
    rate: float = Field(default=0.0, ge=0, le=1)
    kinds: list[FaultKind] = Field(default=["429", "500", "timeout"], min_length=1)
    retry_after: int = Field(default=1, ge=0, description="the Retry-After header of a 429, in seconds")
    delay_seconds: float = Field(default=30.0, ge=0, description="how late a `timeout` answers")
    seed: int | None = Field(default=None, description="makes the random faults reproducible")


class CallbackConfig(Control):
    """`PUT /_callbacks`: the Twilio status callbacks posted for every newly accepted Twilio message."""

    statuses: list[TwilioStatus] = Field(default=["sent", "delivered"], min_length=1)
    shuffle: bool = False
    delay_seconds: float = Field(default=0.5, ge=0, description="after the answer, and between callbacks")
    error_code: int = Field(default=30003, description="the ErrorCode of a `failed` or `undelivered` callback")
    seed: int | None = Field(default=None, description="makes `shuffle` reproducible")


class InboundRequest(Control):
    """`POST /_inbound`: a webhook the mock signs with `secret` and posts to the ledger, as the provider would."""

    webhook_url: str = Field(pattern=r"^https?://", description="kept as given: Twilio signs the exact URL")
    secret: str
    kind: InboundKind
    payload: dict[str, Any]


class InboundAnswer(BaseModel):
    status: int = Field(description="the status code the ledger answered")
    body: Any = Field(description="the ledger's answer: JSON if it parses, else text")


class RequestEntry(BaseModel):
    """One provider call as the mock received it; `status` stays null until it is answered."""

    provider: Literal["twilio", "sendgrid", "slack", "sms", "email", "whatsapp"]
    path: str
    idempotency_key: str | None
    to: str | None
    body: str | None
    provider_message_id: str | None = None
    accepted: bool = False
    status: int | None = None
    fault: FaultKind | None = None
    received_at: datetime


class CallbackEntry(BaseModel):
    """One status callback posted: `answer_status` is the receiver's status code, null if it could not be reached."""

    url: str
    message_sid: str
    status: TwilioStatus
    answer_status: int | None
    error: str | None = None
    posted_at: datetime


class Cleared(BaseModel):
    cleared: bool = True


class JsonProviderRequest(BaseModel):
    """Fields shared by the JSON providers' requests; extra fields are kept, as a provider would ignore them."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    sender: str = Field(alias="from")
    to: str
    timestamp: str | None = None
    status_callback: str | None = None


class SmsRequest(JsonProviderRequest):
    type: str = "sms"
    body: str = ""
    attachments: list[str] | None = None


class EmailRequest(JsonProviderRequest):
    body: str = ""
    attachments: list[str] | None = None


class WhatsappRequest(JsonProviderRequest):
    text: str = ""


class SmsAnswer(BaseModel):
    messaging_provider_id: str


class EmailAnswer(BaseModel):
    xillio_id: str


class WhatsappAnswer(BaseModel):
    channel_message_id: str


class SendgridAddress(BaseModel):
    model_config = ConfigDict(extra="allow")

    email: str
    name: str | None = None


class SendgridPersonalization(BaseModel):
    model_config = ConfigDict(extra="allow")

    to: list[SendgridAddress] = []


class SendgridContent(BaseModel):
    type: str = "text/plain"
    value: str = ""


class SendgridMail(BaseModel):
    """The v3 mail/send body, as far as the mock reads it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    personalizations: list[SendgridPersonalization] = []
    sender: SendgridAddress | None = Field(default=None, alias="from")
    subject: str | None = None
    content: list[SendgridContent] = []


class SlackMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str | None = None


class TwilioMessageForm(BaseModel):
    """The Messages API form, as far as the mock reads it; Twilio ignores the parameters it does not know."""

    To: str | None = None
    From: str | None = None
    MessagingServiceSid: str | None = None
    Body: str | None = None
    MediaUrl: list[str] = []
    StatusCallback: str | None = None


class TwilioMessage(BaseModel):
    """The message resource Twilio answers; the official SDK reads it into a MessageInstance."""

    sid: str
    account_sid: str
    to: str
    from_: str | None = Field(serialization_alias="from")
    body: str
    status: str = "queued"
    num_media: str
    num_segments: str = "1"
    date_created: str
    date_updated: str
    date_sent: str | None = None
    direction: str = "outbound-api"
    uri: str
    api_version: str = "2010-04-01"
    price: str | None = None
    price_unit: str = "USD"
    error_code: int | None = None
    error_message: str | None = None
    messaging_service_sid: str | None = None
    subresource_uris: dict[str, str]


class TwilioError(BaseModel):
    code: int
    message: str
    more_info: str
    status: int
    error: str | None = None
