"""The base of request bodies."""

from pydantic import BaseModel, ConfigDict, model_validator

from ledger.validation import reject_nul_characters


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def storable_text(cls, data: object) -> object:
        reject_nul_characters(data)
        return data
