//! Parameter counts from shapes (nothing allocated) against torchvision's numbers, or, for
//! models torchvision lacks, against counts worked out here from the papers' layer sizes.
//! Then the small models are built on the GPU and their `named_parameters()` compared with
//! the shape lists name by name (the forward/backward tests do the same for the rest).

use ferrograd_device::testing::gpu;
use ferrograd_graph::nn::Module;
use ferrograd_models::registry::{build, info, list, names, shapes};

fn count(name: &str, classes: usize, in_channels: usize) -> usize {
    shapes(name, classes, in_channels).unwrap().count()
}

/// `Linear(i, o)` with bias.
fn fc(i: usize, o: usize) -> usize {
    i * o + o
}

/// Square `k x k` convolution with bias.
fn conv(i: usize, o: usize, k: usize) -> usize {
    i * o * k * k + o
}

#[test]
fn torchvision_counts_for_1000_classes() {
    let expected = [
        ("alexnet", 61_100_840),
        ("vgg11", 132_863_336),
        ("vgg11_bn", 132_868_840),
        ("vgg13", 133_047_848),
        ("vgg13_bn", 133_053_736),
        ("vgg16", 138_357_544),
        ("vgg16_bn", 138_365_992),
        ("vgg19", 143_667_240),
        ("vgg19_bn", 143_678_248),
        ("googlenet", 6_624_904),
        ("googlenet_aux", 13_004_888),
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
    ];
    for (name, n) in expected {
        assert_eq!(count(name, 1000, 3), n, "{name}");
        assert_eq!(info(name).unwrap().params, n, "{name} in list()");
    }
}

#[test]
fn hand_derived_counts() {
    // MLP 784-512-256-10 and LeNet-5 (5x5 convs 1->6->16, 16*5*5 -> 120 -> 84 -> 10).
    assert_eq!(count("mlp", 10, 1), fc(784, 512) + fc(512, 256) + fc(256, 10));
    assert_eq!(count("lenet5", 10, 1), conv(1, 6, 5) + conv(6, 16, 5) + fc(400, 120) + fc(120, 84) + fc(84, 10));
    assert_eq!(count("lenet5", 10, 1), 61_706);

    let head = fc(256 * 36, 4096) + fc(4096, 4096) + fc(4096, 1000);
    // The 2012 AlexNet: conv2, conv4, conv5 see half their input channels (two GPUs).
    let alexnet_2012 = conv(3, 96, 11) + conv(48, 256, 5) + conv(256, 384, 3) + conv(192, 384, 3) + conv(192, 256, 3);
    assert_eq!(count("alexnet_lrn", 1000, 3), alexnet_2012 + head);
    assert_eq!(count("alexnet_lrn", 1000, 3), 60_965_224);
    let zfnet = conv(3, 96, 7) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) + conv(384, 256, 3);
    assert_eq!(count("zfnet", 1000, 3), zfnet + head);

    // CIFAR VGG = torchvision's minus its 25088-4096-4096-1000 head, plus Linear(512, 10).
    let vgg_head = fc(512 * 49, 4096) + fc(4096, 4096) + fc(4096, 1000);
    for v in ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"] {
        let cifar = format!("{v}_cifar");
        assert_eq!(count(&cifar, 10, 3), count(v, 1000, 3) - vgg_head + fc(512, 10), "{cifar}");
    }

    // CIFAR ResNet-(6n+2), option A (no shortcut parameters): stem conv 3->16 + BN,
    // stage widths 16/32/64 of n blocks with two 3x3 convs (no bias) + two BNs, fc 64->10.
    let block = |i: usize, o: usize| i * o * 9 + 2 * o + o * o * 9 + 2 * o;
    let cifar_resnet = |n: usize| {
        27 * 16
            + 32
            + n * block(16, 16)
            + block(16, 32)
            + (n - 1) * block(32, 32)
            + block(32, 64)
            + (n - 1) * block(64, 64)
            + fc(64, 10)
    };
    for (name, n) in [("resnet20", 3), ("resnet32", 5), ("resnet44", 7), ("resnet56", 9), ("resnet110", 18)] {
        assert_eq!(count(name, 10, 3), cifar_resnet(n), "{name}");
    }
    assert_eq!(cifar_resnet(3), 269_722); // the paper's "0.27M"

    // ResNet-18 for 32x32: torchvision's with a 3x3 stem and a 10-class fc.
    let stem_7x7 = 3 * 64 * 49;
    let stem_3x3 = 3 * 64 * 9;
    assert_eq!(count("resnet18_cifar", 10, 3), 11_689_512 - stem_7x7 + stem_3x3 - fc(512, 1000) + fc(512, 10));
}

#[test]
fn counts_follow_classes_and_channels() {
    // The head grows by (features + 1) per class; the stem by its kernel area per channel.
    assert_eq!(count("resnet50", 10, 3), 25_557_032 - fc(2048, 1000) + fc(2048, 10));
    assert_eq!(count("resnet18", 1000, 1), 11_689_512 - 2 * 64 * 49);
    assert_eq!(count("vgg16", 1000, 1), 138_357_544 - 2 * 64 * 9);
}

#[test]
fn list_covers_every_name_once() {
    let listed = list();
    assert_eq!(listed.iter().map(|m| m.name).collect::<Vec<_>>(), names());
    for m in &listed {
        assert!(m.params > 0 && m.input_shape.iter().all(|&d| d > 0), "{m:?}");
    }
    let err = build("resnet19", 10, 3, &ferrograd_device::Device::cpu(), 0).err().unwrap();
    assert!(err.to_string().contains("unknown model \"resnet19\""), "{err}");
    assert!(shapes("vgg12", 10, 3).is_err());
}

#[test]
fn built_models_match_their_shape_lists() {
    let device = gpu();
    for name in ["mlp", "lenet5", "resnet20", "resnet18_cifar", "vgg11_bn_cifar", "googlenet_aux"] {
        let in_channels = if name == "mlp" || name == "lenet5" { 1 } else { 3 };
        let model = build(name, 10, in_channels, &device, 1).unwrap();
        let built: Vec<(String, Vec<usize>)> =
            model.named_parameters().into_iter().map(|(n, t)| (n, t.shape())).collect();
        assert_eq!(built, shapes(name, 10, in_channels).unwrap().entries(), "{name}");
    }
}
