"""The network's config and the rules an input size must keep; free of torch, so that the command line's
--help can show the defaults without importing it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from trainer.shape import ModelShape, min_time_steps, reads_labels_of, time_steps


@dataclass(frozen=True, kw_only=True)
class ModelConfig(ModelShape):
    """The network: a ModelShape (its fields inherited, flat, as checkpoints store them) with its input's
    colour channels, its output size and the longest label it must read."""

    num_classes: int  # alphabet size + 1 for the CTC blank
    channels: int = 1
    max_label_len: int | None = None  # when given, the model refuses a width too narrow for such labels
    # The shortest label it was trained on: with max_label_len, the lengths it reads under by default (None in
    # models made before it was recorded, which read any length).
    min_label_len: int | None = None

    @classmethod
    def from_shape(
        cls, shape: ModelShape, num_classes: int, lengths: tuple[int, int] | None = None, channels: int = 1
    ) -> ModelConfig:
        shortest, longest = lengths or (None, None)
        return cls(
            num_classes=num_classes, **asdict(shape), channels=channels, max_label_len=longest, min_label_len=shortest
        )

    @property
    def lengths(self) -> tuple[int, int] | None:
        """(shortest, longest) label it was trained on; None when not recorded."""
        if self.min_label_len is None or self.max_label_len is None:
            return None
        return self.min_label_len, self.max_label_len

    @classmethod
    def from_dict(cls, saved: dict) -> ModelConfig:
        """As a checkpoint stores it (`conv` a list); KeyError/TypeError when it is not a model config."""
        return cls(**{**saved, "conv": tuple(saved["conv"])})


MAX_HEIGHT, MAX_WIDTH = 128, 2048  # past these a batch's activations outgrow a machine's memory


def check_input_size(height: int, width: int) -> None:
    """The pooling halves the height four times and the width twice; the bounds keep a batch in memory
    (at 4096x4096 one batch asked for 25 GB, at 16000 pixels high the model had 17 M parameters)."""
    if height < 16 or width < 4 or height % 16 or width % 4:
        raise ValueError(f"input height must be a multiple of 16 and width of 4, got {height}x{width}")
    if height > MAX_HEIGHT or width > MAX_WIDTH:
        raise ValueError(
            f"input size {height}x{width} is too large: height up to {MAX_HEIGHT}, width up to {MAX_WIDTH}"
        )


def check_time_steps(config: ModelConfig) -> None:
    """The width must give CTC a frame per character of the longest label, and a blank between repeats."""
    if config.max_label_len and not reads_labels_of(config.width, config.max_label_len):
        need = min_time_steps(config.max_label_len)
        raise ValueError(
            f"input width {config.width} gives {time_steps(config.width)} time steps, but labels of "
            f"{config.max_label_len} characters need at least {need}: use a width of {4 * need} or more"
        )
