"""Object detection (boxes and points) with a CenterNet head.

Targets per sample: a Gaussian peak per object on its class heatmap (value 1 at the centre
cell), its box size in output cells and the centre's sub-cell offset. A point is a zero-size
box; it trains and is scored as a ``point_box_size`` px box around the point. Loss: CenterNet's
penalty-reduced focal loss on the heatmap + ``size_weight`` x L1 on sizes + L1 on offsets,
both at centre cells only, normalised by the number of objects.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision

from earthplat.batch import Batch
from earthplat.train.tasks.base import TaskModule
from earthplat.traincore.reduce import global_mean


def expand_points(boxes: torch.Tensor, point_box_size: float) -> torch.Tensor:
    """[n, 4] boxes with zero-size ones (points) grown to ``point_box_size`` around them."""
    boxes = boxes.float().reshape(-1, 4)
    if boxes.numel() == 0:
        return boxes
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    point = ((boxes[:, 2:] - boxes[:, :2]) <= 0).any(dim=1, keepdim=True)
    half = point_box_size / 2
    grown = torch.cat([c - half, c + half], dim=1)
    return torch.where(point, grown, boxes)


def centernet_targets(
    boxes: list[torch.Tensor],
    labels: list[torch.Tensor],
    shape: tuple[int, int, int, int],
    stride: float,
    point_box_size: float,
    min_sigma: float = 0.5,
) -> dict[str, torch.Tensor]:
    """Heatmap [B, K, h, w], size and offset [B, 2, h, w], and the centre mask [B, h, w]."""
    b, k, h, w = shape
    device = boxes[0].device if boxes else torch.device("cpu")
    heat = torch.zeros(b, k, h, w, device=device)
    size = torch.zeros(b, 2, h, w, device=device)
    offset = torch.zeros(b, 2, h, w, device=device)
    mask = torch.zeros(b, h, w, dtype=torch.bool, device=device)
    ys = torch.arange(h, device=device, dtype=torch.float)[:, None]
    xs = torch.arange(w, device=device, dtype=torch.float)[None, :]
    for i, (bx, lb) in enumerate(zip(boxes, labels, strict=True)):
        bx = expand_points(bx.to(device), point_box_size) / stride  # in output cells
        for (x0, y0, x1, y1), label in zip(bx.tolist(), lb.tolist(), strict=True):
            if label < 0:
                continue
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            col, row = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
            sigma = max(min_sigma, ((x1 - x0) * (y1 - y0)) ** 0.5 / 6)
            g = torch.exp(-((xs - col) ** 2 + (ys - row) ** 2) / (2 * sigma**2))  # [h, w]
            heat[i, label] = torch.maximum(heat[i, label], g)
            size[i, :, row, col] = torch.tensor([x1 - x0, y1 - y0], device=device)
            offset[i, :, row, col] = torch.tensor([cx - col, cy - row], device=device)
            mask[i, row, col] = True
    return {"heatmap": heat, "size": size, "offset": offset, "mask": mask}


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2, beta: float = 4):
    """CenterNet's penalty-reduced pixel focal loss (sum over peaks / number of peaks)."""
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = torch.log(1 - p) * p**alpha * (1 - target) ** beta * (1 - pos)
    return global_mean(-(pos_loss.sum() + neg_loss.sum()), pos.sum())


class DetectionTask(TaskModule):
    """Boxes and points. Metrics: COCO mAP, mAP@50 and mAP@75 (torchmetrics
    ``MeanAveragePrecision``, boxes in chip pixels)."""

    task = "detection"

    def __init__(
        self,
        point_box_size: float = 10.0,
        size_weight: float = 0.1,
        score_threshold: float = 0.05,
        max_detections: int = 100,
        **kwargs,
    ) -> None:
        """
        Args:
            point_box_size: side in pixels of the box a point (zero-size box) stands for.
            size_weight: weight of the box-size L1 loss.
            score_threshold: minimum heatmap score of a reported detection.
            max_detections: detections per chip at most.
        """
        self.point_box_size, self.size_weight = point_box_size, size_weight
        self.score_threshold, self.max_detections = score_threshold, max_detections
        super().__init__(**kwargs)
        self.hparams.update(
            point_box_size=point_box_size,
            size_weight=size_weight,
            score_threshold=score_threshold,
            max_detections=max_detections,
        )

    def compute_loss(self, out: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        t = centernet_targets(
            batch.boxes,
            batch.box_labels,
            tuple(out["heatmap"].shape),
            self.model.detection_stride,
            self.point_box_size,
        )
        heat = focal_loss(out["heatmap"], t["heatmap"])
        m = t["mask"][:, None].float()  # [B, 1, h, w]
        size = global_mean(((out["size"] - t["size"]).abs() * m).sum(), m.sum())
        offset = global_mean(((out["offset"] - t["offset"]).abs() * m).sum(), m.sum())
        return heat + self.size_weight * size + offset

    def build_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict({"map": MeanAveragePrecision(box_format="xyxy", iou_type="bbox")})

    def _detections(self, out: dict[str, torch.Tensor], batch: Batch) -> list[list[dict]]:
        first = next(iter(batch.modalities.values())).data
        return self.model.decode_detections(
            out,
            threshold=self.score_threshold,
            max_per_image=self.max_detections,
            image_size=tuple(first.shape[-2:]),
        )

    def update_metrics(self, metrics: nn.ModuleDict, out: dict, batch: Batch) -> None:
        preds, targets = [], []
        for dets, boxes, labels in zip(
            self._detections(out, batch), batch.boxes, batch.box_labels, strict=True
        ):
            preds.append(
                {
                    "boxes": torch.tensor(
                        [[d["x0"], d["y0"], d["x1"], d["y1"]] for d in dets]
                    ).reshape(-1, 4),
                    "scores": torch.tensor([d["score"] for d in dets]),
                    "labels": torch.tensor([d["label"] for d in dets], dtype=torch.long),
                }
            )
            keep = labels >= 0
            targets.append(
                {
                    "boxes": expand_points(boxes[keep].cpu(), self.point_box_size),
                    "labels": labels[keep].long().cpu(),
                }
            )
        metrics["map"].update(preds, targets)

    def _log_metrics(self, metrics: nn.ModuleDict, stage: str) -> None:
        metric = metrics["map"]
        if not metric.update_called:
            return
        result = metric.compute()
        metric.reset()
        keep = ("map", "map_50", "map_75", "mar_100")
        self.log_dict(
            {f"{stage}/{k}": torch.as_tensor(result[k]).float() for k in keep}, sync_dist=True
        )

    def predict_outputs(self, out: dict[str, torch.Tensor]) -> list[list[dict]]:
        return self.model.decode_detections(
            out, threshold=self.score_threshold, max_per_image=self.max_detections
        )
