// NumPy .npy files (format versions 1-3, C order, little-endian): the
// exchange format of `sparta run`. Reading checks the magic, the header, the
// dtype and that the data size matches the shape; errors name the file.
#pragma once

#include <string>

#include "core/tensor.h"

namespace sparta {

Tensor read_npy(const std::string& path);
Tensor parse_npy(const std::string& bytes, const std::string& what);
void write_npy(const std::string& path, const Tensor& t);
std::string format_npy(const Tensor& t);

}  // namespace sparta
