// The graph IR: Values (tensors flowing between operators) and Nodes
// (operators), in topological order. Every Value has a slot for its TeSA:
// importers leave it empty, TeSA propagation fills and refines it, and
// transformation and kernel choice read it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/tesa.h"

namespace sparta {

class Node;

// How a value's elements are laid out in memory. Shapes stay logical
// (N, C, H, W); a layout pass (passes/layout) picks nChw8c or nChw16c
// (channels in blocks of 8 or 16 innermost, the vector width of the host's
// convolution kernels) or NHWC between the convolutions that run faster on
// it, and inserts reorders where an operator needs the plain layout.
// nhwc (channels last, where oneDNN's brgemm convolutions run) is the
// limit case of blocking: one block of all C channels.
enum class Layout { plain, nchw8c, nchw16c, nhwc };
const char* layout_name(Layout l);
// Channels per block of a value of `channels` channels in layout l.
inline int64_t layout_block(Layout l, int64_t channels) {
  return l == Layout::nchw8c ? 8 : l == Layout::nchw16c ? 16 : l == Layout::nhwc ? channels : 1;
}

struct Value {
  std::string name;
  std::optional<DType> dtype;                 // unknown until inferred
  std::optional<std::vector<int64_t>> dims;   // rank known; an extent of -1 is unknown
  std::vector<std::string> dim_names;         // symbolic names ("batch"), parallel to dims, may be empty
  std::optional<Tensor> constant;             // initializer or folded constant
  // A small integer value (shape arithmetic) that analysis computed from the
  // input shapes a compile is bound to (Graph::shapes_bound): known to
  // passes, but computed again at run time, so that the model still runs
  // at other shapes. Never a constant of the graph.
  std::optional<Tensor> shape_value;
  std::optional<Tesa> tesa;                   // sparsity attribute, attached by analysis
  Layout layout = Layout::plain;              // memory layout at run time
  Node* producer = nullptr;
  std::vector<Node*> consumers;

  bool is_constant() const { return constant.has_value(); }
  // Dims known, of rank r, every extent positive (what blocked layouts and
  // ahead-of-time plans need).
  bool static_rank(size_t r) const;
  std::string shape_str() const;  // "[1, 128, 768]", "[?, 3]", "?" when the rank is unknown
};

// A subgraph (If's branches, Loop's body) is kept as a self-contained
// serialized ONNX model (kind g, bytes in `s`): the subgraph with the outer
// model's opsets, its outer-scope constants as initializers and its other
// outer-scope reads as inputs. The node reads those as extra inputs after
// its own, named in its "sparta.captures" attribute (frontend/onnx_import).
struct Attribute {
  enum class Kind { f, i, s, t, fs, is, ss, g };
  Kind kind = Kind::i;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> fs;
  std::vector<int64_t> is;
  std::vector<std::string> ss;
  std::string str() const;  // short, for printing
};

class Node {
 public:
  std::string name;
  std::string op_type;
  std::string domain;             // "" is the default ONNX domain
  std::vector<Value*> inputs;     // nullptr for an omitted optional input
  std::vector<Value*> outputs;
  std::map<std::string, Attribute> attrs;

  const Attribute* attr(const std::string& key) const;
  int64_t attr_int(const std::string& key, int64_t dflt) const;
  float attr_float(const std::string& key, float dflt) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> dflt = {}) const;
};

class Graph {
 public:
  std::string name;
  std::string producer;  // e.g. "pytorch 1.13.1"
  std::map<std::string, int64_t> opsets;  // domain -> version
  std::vector<Value*> inputs;   // runtime inputs (not initializers)
  std::vector<Value*> outputs;
  // Graph inputs' symbolic dims were given extents for this compile (see
  // runtime/compiled_model.h, CompileConfig::shapes): shape arithmetic is
  // analysed (Value::shape_value) but not folded into constants.
  bool shapes_bound = false;

  Value* add_value(const std::string& name);   // error if the name exists
  // A new constant value holding t, named `base` (made unique with "_").
  Value* add_constant(const std::string& base, Tensor t);
  Value* find(const std::string& name) const;  // or null
  bool is_output(const Value* v) const;        // one of the graph's outputs
  // The one node reading v, if exactly one does and v is not a graph output
  // (what a pass may rewrite without another reader noticing), else null.
  Node* sole_consumer(const Value* v) const;
  Node* add_node(std::string op_type, std::string name = "");
  // A new node placed before node `before` (callers then link()).
  Node* insert_node(const Node* before, std::string op_type, std::string name);
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  int64_t default_opset() const;

  // Connects producer/consumer links from node inputs and outputs, and
  // checks that nodes are in topological order (every input is a graph
  // input, a constant, or produced by an earlier node). Throws sparta::Error
  // naming the first offending node.
  void link();

  // Removes the given nodes (their outputs stay as values; callers make
  // them constants or leave them unused) and relinks.
  void erase_nodes(const std::vector<const Node*>& dead);

  // Removes constants nothing reads any more (the weights a pass replaced
  // with shrunk or folded ones), so that they take no memory and no space
  // in a compiled model. Returns how many went.
  int drop_unused_constants();

  int64_t parameter_count() const;  // elements in constant values
  // Human-readable listing: one line per node with shapes, then weights
  // with their sparsity.
  std::string dump() const;

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::string, Value*> by_name_;
};

}  // namespace sparta
