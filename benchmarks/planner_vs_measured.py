"""The planner's predicted step time for a digits-sized CNN and MLP against a measured torch step on this host.

Run: .venv/bin/python benchmarks/planner_vs_measured.py   (torch is imported here only; the planner never does)
"""

from __future__ import annotations

import time

from aidc.planner.host import conv2d, host_peak, linear, predict_step

BATCH = 64


def measure(model: object, x: object, y: object, steps: int = 60) -> float:
    import torch

    assert isinstance(model, torch.nn.Module)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for i in range(steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if i >= 10:  # skip warm-up
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    import torch

    torch.manual_seed(0)
    x = torch.randn(BATCH, 1, 8, 8)  # sklearn digits: 8×8 grey images, 10 classes
    y = torch.randint(0, 10, (BATCH,))
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(32 * 64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    shapes = {
        "digits CNN (2 conv + 2 fc)": [conv2d("conv1", BATCH, 1, 16, 3, 8, 8), conv2d("conv2", BATCH, 16, 32, 3, 8, 8),
                                       linear("fc1", BATCH, 32 * 64, 128), linear("fc2", BATCH, 128, 10)],
        "digits MLP (3 fc)": [linear("fc1", BATCH, 64, 512), linear("fc2", BATCH, 512, 512),
                              linear("fc3", BATCH, 512, 10)],
    }
    print(f"host matmul peak (numpy fp32, 1024³): {host_peak() / 1e9:.1f} GFLOP/s; torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'model':30s} {'predicted ms':>13s} {'measured ms':>12s} {'ratio':>7s}")
    for (name, layers), model in zip(shapes.items(), (cnn, mlp)):
        pred = predict_step(layers)["step_s"]
        meas = measure(model, x, y)
        print(f"{name:30s} {pred * 1e3:13.3f} {meas * 1e3:12.3f} {pred / meas:7.2f}")


if __name__ == "__main__":
    main()
