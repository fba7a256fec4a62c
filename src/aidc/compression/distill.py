"""Knowledge distillation: a smaller student trained on the teacher's temperature-softened outputs and the labels
(Hinton et al. 2015: alpha·T²·KL(teacher_T ‖ student_T) + (1 − alpha)·cross-entropy)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def soft_target_loss(
    temperature: float, alpha: float
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The student's loss on a batch: (its logits, the labels, the teacher's logits for the same rows) → scalar."""

    def loss(student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        soft = F.kl_div(
            F.log_softmax(student_logits / temperature, dim=1),
            F.softmax(teacher_logits / temperature, dim=1),
            reduction="batchmean",
        ) * (temperature**2)  # T² keeps the soft term's gradients on the scale of the hard one
        hard = F.cross_entropy(student_logits, labels)
        return alpha * soft + (1 - alpha) * hard

    return loss


def student_of(teacher_arch: dict[str, object], model: str, width: int | None) -> dict[str, object]:
    """The student's architecture: the teacher's input and classes, its own family and width."""
    return {**teacher_arch, "model": model, "width": width}


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
