#!/usr/bin/env python3
"""The seed notebook's VGG exercise in PyTorch, on the same CIFAR-10 files runner reads.

The recipe is the seed's (../shared/seed/, section 1.3): the VGG class with cfg
[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M], BatchNorm and ReLU after every conv,
AvgPool2d(1, 1), Linear(512, 10); RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor +
Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)) for training, ToTensor + Normalize
for testing; batch 128 with shuffling, Adam lr 1e-3, cross-entropy, 10 epochs; a DataLoader with
worker processes. Two departures, both neutral for the comparison: the transforms are written
with torch ops instead of torchvision (same definitions: zero padding, uniform crop offsets,
flip with p = 0.5, x / 255), so the script needs no torchvision; and the data comes from the
binary files (data_batch_1..5.bin, test_batch.bin) rather than torchvision's pickled copy.

The seed evaluates without net.eval(), i.e. with BatchNorm on batch statistics. Both numbers are
printed: `test_acc` (eval mode, what runner reports) and `test_acc_seed_mode` (the seed's way).

    python3 scripts/torch_seed_vgg.py --data data-gpu/cifar-10-batches-bin --device cuda
    prints per-epoch lines, then one JSON line: {"framework": "pytorch", "seconds": ..., ...}
"""

import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.optim as optim

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)


def read_cifar(folder, names, limit=None):
    raw = b"".join(open(os.path.join(folder, n), "rb").read() for n in names)
    t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, 3073)
    if limit:
        t = t[:limit]
    return t[:, 1:].reshape(-1, 3, 32, 32).clone(), t[:, 0].long().clone()


class Cifar(torch.utils.data.Dataset):
    def __init__(self, images, labels, train):
        self.images, self.labels, self.train = images, labels, train
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float() / 255.0  # ToTensor
        if self.train:
            x = nn.functional.pad(x, (4, 4, 4, 4))  # RandomCrop(32, padding=4)
            top, left = torch.randint(0, 9, (2,)).tolist()
            x = x[:, top : top + 32, left : left + 32]
            if torch.rand(1).item() < 0.5:  # RandomHorizontalFlip()
                x = x.flip(2)
        return (x - self.mean) / self.std, self.labels[i]  # Normalize


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
        self.features = self._make_layers(self.cfg)
        self.classifier = nn.Linear(512, 10)

    def forward(self, x):
        out = self.features(x)
        out = out.view(out.size(0), -1)
        return self.classifier(out)

    def _make_layers(self, cfg):
        layers, in_channels = [], 3
        for x in cfg:
            if x == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                layers += [nn.Conv2d(in_channels, x, kernel_size=3, padding=1),
                           nn.BatchNorm2d(x), nn.ReLU(inplace=True)]
                in_channels = x
        layers += [nn.AvgPool2d(kernel_size=1, stride=1)]
        return nn.Sequential(*layers)


def accuracy(net, loader, device):
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            _, predicted = torch.max(net(images).data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return 100.0 * correct / total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="cifar-10-batches-bin folder")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train_x, train_y = read_cifar(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)], args.train_limit)
    test_x, test_y = read_cifar(args.data, ["test_batch.bin"])
    trainloader = torch.utils.data.DataLoader(
        Cifar(train_x, train_y, True), batch_size=128, shuffle=True, num_workers=args.workers,
        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    testloader = torch.utils.data.DataLoader(
        Cifar(test_x, test_y, False), batch_size=128, shuffle=False, num_workers=args.workers,
        pin_memory=device.type == "cuda")
    net = VGG().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(net.parameters(), lr=0.001)
    print(f"pytorch {torch.__version__} on {device}: {len(train_y)} training, {len(test_y)} test images")
    started = time.time()
    for epoch in range(args.epochs):
        net.train()
        t0 = time.time()
        for i, (inputs, labels) in enumerate(trainloader):
            inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = criterion(net(inputs), labels)
            loss.backward()
            optimizer.step()
            if i % 100 == 0:
                print("Epoch: %d Minibatch: %5d loss: %.3f" % (epoch + 1, i + 1, loss.item()))
        if device.type == "cuda":
            torch.cuda.synchronize()
        print(f"epoch {epoch + 1}: {time.time() - t0:.2f}s")
    train_seconds = time.time() - started
    net.eval()
    acc = accuracy(net, testloader, device)
    net.train()  # the seed's evaluation: BatchNorm on batch statistics
    acc_seed = accuracy(net, testloader, device)
    seconds = time.time() - started
    print(json.dumps({"framework": "pytorch", "device": str(device), "epochs": args.epochs,
                      "train_images": len(train_y), "train_seconds": round(train_seconds, 2),
                      "seconds": round(seconds, 2), "test_acc": round(acc, 2),
                      "test_acc_seed_mode": round(acc_seed, 2)}))


if __name__ == "__main__":
    main()
