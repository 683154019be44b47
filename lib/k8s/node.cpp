#include "dualstack/k8s/node.hpp"

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"

namespace dualstack::k8s {

using nlohmann::json;
using sys::Code;
using sys::Error;

namespace {

std::string indexed(std::string_view field, std::size_t i) {
  return std::string(field) + "[" + std::to_string(i) + "]";
}

void addPodCidr(Node& node, const std::string& text, std::string field) {
  if (auto p = ip::Prefix::parse(text)) {
    node.podCIDRs.push_back({*p, std::move(field)});
  } else {
    node.unusable.push_back({Unusable::Kind::PodCidr, std::move(field), text});
  }
}

// `rel` names the list from the object ("spec.podCIDRs"), `where` the object.
void readPodCidrs(Node& node, const json& list, std::string_view where, const std::string& rel,
                  Code code) {
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string field = indexed(rel, i);
    const json& item = list[i];
    if (!item.is_string()) {
      throw Error(code, sys::fieldPath(where, field) + ": expected a string, got " +
                            std::string(sys::typeName(item)));
    }
    addPodCidr(node, item.get<std::string>(), field);
  }
}

void readAddresses(Node& node, const json& list, std::string_view where, const std::string& rel,
                   Code code) {
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string field = indexed(rel, i);
    const std::string wi = sys::fieldPath(where, field);
    const json& item = list[i];
    if (!item.is_object()) {
      throw Error(code, wi + ": expected an object, got " + std::string(sys::typeName(item)));
    }
    std::string type = sys::reqString(item, "type", wi, code);
    std::string text = sys::reqString(item, "address", wi, code);
    if (auto a = ip::Address::parse(text)) {
      node.addresses.push_back({std::move(type), *a});
    } else if (type == "InternalIP" || type == "ExternalIP") {
      node.unusable.push_back({Unusable::Kind::Address, field + ".address", std::move(text)});
    }
  }
}

void readObject(Node& node, const json& obj, std::string_view where, Code code) {
  if (const json* meta = sys::optObject(obj, "metadata", where, code)) {
    node.name = sys::optString(*meta, "name", sys::fieldPath(where, "metadata"), code).value_or("");
  }
  if (const json* spec = sys::optObject(obj, "spec", where, code)) {
    const std::string ws = sys::fieldPath(where, "spec");
    if (const json* list = sys::optArray(*spec, "podCIDRs", ws, code)) {
      readPodCidrs(node, *list, where, "spec.podCIDRs", code);
    }
    // Clusters older than dual-stack (and some tools) set only the singular field.
    if (node.podCIDRs.empty() && node.unusable.empty()) {
      if (auto one = sys::optString(*spec, "podCIDR", ws, code); one && !one->empty()) {
        addPodCidr(node, *one, "spec.podCIDR");
      }
    }
  }
  if (const json* status = sys::optObject(obj, "status", where, code)) {
    if (const json* list =
            sys::optArray(*status, "addresses", sys::fieldPath(where, "status"), code)) {
      readAddresses(node, *list, where, "status.addresses", code);
    }
  }
}

}  // namespace

Node parseNode(const json& obj, std::string_view where, NodeLayout layout, Code code) {
  if (!obj.is_object()) {
    const std::string what = layout == NodeLayout::Object ? "a Node object" : "an object";
    // With no `where`, the caller names the object (a file) in its context.
    throw Error(code, (where.empty() ? std::string() : std::string(where) + ": ") + "expected " +
                          what + ", got " + std::string(sys::typeName(obj)));
  }
  Node node;
  if (layout == NodeLayout::Object) {
    readObject(node, obj, where, code);
    return node;
  }
  if (const json* list = sys::optArray(obj, "podCIDRs", where, code)) {
    readPodCidrs(node, *list, where, "podCIDRs", code);
  }
  if (const json* list = sys::optArray(obj, "addresses", where, code)) {
    readAddresses(node, *list, where, "addresses", code);
  }
  return node;
}

}  // namespace dualstack::k8s
