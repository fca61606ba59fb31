// scalpel::data umbrella header: datasets, loaders, transforms, readers, synthetic sets.
//
// Include this to get everything the experiments need: Dataset/Example (data/dataset.h), the
// DataLoader (data/loader.h), transforms (data/transforms.h), the MNIST / CIFAR-10 / image-folder
// / byte-text readers, the Cifar10Mnist composite, the built-in synthetic sets and the
// resolve_* helpers that pick real data when present (data/registry.h).
#pragma once

#include "data/cifar.h"
#include "data/composite.h"
#include "data/dataset.h"
#include "data/image_folder.h"
#include "data/image_ops.h"
#include "data/io.h"
#include "data/loader.h"
#include "data/mnist.h"
#include "data/registry.h"
#include "data/synthetic.h"
#include "data/text.h"
#include "data/transforms.h"
