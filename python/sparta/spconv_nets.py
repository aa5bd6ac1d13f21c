"""The networks of sparta.nn written with spconv (PyPI `spconv`, its CPU
build, with PyTorch): the same structure and parameter names, so that
sparta.nn.MinkUNet().load_state_dict(minkunet(...).state_dict()) runs the
same network in both engines. Needs spconv and torch (imported on call).
"""
from .nn import MINKUNET_CHANNELS


def _modules():
    import spconv.pytorch as sp
    import torch
    from torch import nn
    return sp, torch, nn


def _block(cin, cout, key):
    sp, torch, nn = _modules()

    class Block(sp.SparseModule):  # a SparseSequential passes it the sparse tensor, not its features
        def __init__(self):
            super().__init__()
            self.conv1 = sp.SubMConv3d(cin, cout, 3, padding=1, bias=False, indice_key=key)
            self.bn1 = nn.BatchNorm1d(cout)
            self.conv2 = sp.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=key)
            self.bn2 = nn.BatchNorm1d(cout)
            self.down = None
            if cin != cout:
                self.down = sp.SparseSequential(sp.SubMConv3d(cin, cout, 1, bias=False, indice_key=key + "_1x1"),
                                                nn.BatchNorm1d(cout))

        def forward(self, x):
            h = self.conv1(x)
            h = h.replace_feature(torch.relu(self.bn1(h.features)))
            h = self.conv2(h)
            h = h.replace_feature(self.bn2(h.features))
            s = x if self.down is None else self.down(x)
            return h.replace_feature(torch.relu(h.features + s.features))

    return Block()


def minkunet(in_channels=4, num_classes=19, channels=MINKUNET_CHANNELS):
    """sparta.nn.MinkUNet in spconv; forward takes and returns a spconv SparseConvTensor."""
    sp, torch, nn = _modules()
    cs = list(channels)

    class MinkUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = sp.SparseSequential(
                sp.SubMConv3d(in_channels, cs[0], 3, padding=1, bias=False, indice_key="s0"), nn.BatchNorm1d(cs[0]),
                nn.ReLU(), sp.SubMConv3d(cs[0], cs[0], 3, padding=1, bias=False, indice_key="s0"),
                nn.BatchNorm1d(cs[0]), nn.ReLU())
            self.downs = nn.ModuleList()
            for i in range(4):
                self.downs.append(sp.SparseSequential(
                    sp.SparseConv3d(cs[i], cs[i], 2, stride=2, bias=False, indice_key=f"d{i}"), nn.BatchNorm1d(cs[i]),
                    nn.ReLU(), _block(cs[i], cs[i + 1], f"s{i + 1}"), _block(cs[i + 1], cs[i + 1], f"s{i + 1}")))
            self.ups = nn.ModuleList()
            for i in range(4):
                cin, cout, skip = cs[4 + i], cs[5 + i], cs[3 - i]
                up = sp.SparseSequential(sp.SparseInverseConv3d(cin, cout, 2, bias=False, indice_key=f"d{3 - i}"),
                                         nn.BatchNorm1d(cout), nn.ReLU())
                self.ups.append(nn.ModuleList([up, nn.ModuleList([_block(cout + skip, cout, f"s{3 - i}"),
                                                                  _block(cout, cout, f"s{3 - i}")])]))
            self.head = sp.SubMConv3d(cs[8], num_classes, 1, bias=True, indice_key="s0_1x1")

        def forward(self, x):
            skips = []
            h = self.stem(x)
            for d in self.downs:
                skips.append(h)
                h = d(h)
            for i, (up, blocks) in enumerate(self.ups):
                u = up(h)
                h = u.replace_feature(torch.cat([u.features, skips[3 - i].features], 1))
                for b in blocks:
                    h = b(h)
            return self.head(h)

    return MinkUNet().eval()


def second_encoder(in_channels=4):
    """sparta.nn.SecondEncoder in spconv."""
    sp, torch, nn = _modules()

    def cbr(conv, c):
        return sp.SparseSequential(conv, nn.BatchNorm1d(c), nn.ReLU())

    class Second(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_input = cbr(sp.SubMConv3d(in_channels, 16, 3, padding=1, bias=False, indice_key="s0"), 16)
            self.conv1 = sp.SparseSequential(cbr(sp.SubMConv3d(16, 16, 3, padding=1, bias=False, indice_key="s0"), 16))
            widths = [16, 32, 64, 64]
            for st in (2, 3, 4):
                cin, cout = widths[st - 2], widths[st - 1]
                pad = (1, 1, 0) if st == 4 else 1
                setattr(self, f"conv{st}", sp.SparseSequential(
                    cbr(sp.SparseConv3d(cin, cout, 3, stride=2, padding=pad, bias=False, indice_key=f"d{st}"), cout),
                    cbr(sp.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=f"s{st}"), cout),
                    cbr(sp.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=f"s{st}"), cout)))
            self.conv_out = cbr(sp.SparseConv3d(64, 128, (1, 1, 3), stride=(1, 1, 2), padding=0, bias=False), 128)

        def forward(self, x):
            for m in (self.conv_input, self.conv1, self.conv2, self.conv3, self.conv4, self.conv_out):
                x = m(x)
            return x

    return Second().eval()
