"""``program_config.yaml``: the environments the catalogue is published to, and what each gets.

Every environment gets ``programs`` (``all`` or a list) unless it names its own selection; the
one called ``cloud`` gets ``cloud_runtime_programs``, as in the seed's catalogue repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

CLOUD_ENVIRONMENT = "cloud"


def _selection(value: Any) -> Literal["all"] | list[str]:
    if value == "all" or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise ValueError(f"must be 'all' or a list of program names, got {value!r}")


Selection = Annotated[Any, AfterValidator(_selection)]


class ConfigError(ValueError):
    """The publishing configuration cannot be used; the message names the file and the key."""


class EnvironmentConfig(BaseModel):
    """Where one environment's server is: environment variables holding its URL and token."""

    model_config = ConfigDict(extra="forbid")

    url_env: str = Field(min_length=1)
    token_env: str = Field(min_length=1)
    programs: Selection | None = None


class PublishConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environments: dict[str, EnvironmentConfig] = Field(min_length=1)
    programs: Selection = "all"
    cloud_runtime_programs: list[str] = Field(default_factory=list)

    def selection(self, environment: str) -> Selection:
        """The programs ``environment`` gets."""
        own = self.environments[environment].programs
        if own is not None:
            return own
        return self.cloud_runtime_programs if environment == CLOUD_ENVIRONMENT else self.programs

    def unknown_programs(self, catalogue_names: set[str]) -> list[str]:
        """Names the configuration selects that the catalogue does not have."""
        selections = [self.programs, self.cloud_runtime_programs]
        selections += [env.programs for env in self.environments.values()]
        named = {n for s in selections if isinstance(s, list) for n in s}
        return sorted(named - catalogue_names)


def load_config(path: Path) -> PublishConfig:
    """Read and validate the YAML file; raise ConfigError naming every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping with an 'environments' key")
    try:
        return PublishConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(map(str, err['loc'])) or '(top level)'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from None
