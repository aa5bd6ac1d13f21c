// sparta's version, recorded in compiled models and in kernel-choice cache
// keys (a new version may time kernels differently).
#pragma once

#define SPARTA_VERSION_STRING "0.1.0"
