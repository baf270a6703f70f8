// Strict JSON reading for files users write (configs, folds, a model folder's config.json): a key repeated in one
// object is an error, where nlohmann keeps the last value silently (a second "train" section would replace the first).
// Test: build/tests/lowpass_tests -tc='json file*'
#pragma once
#include <cstdint>
#include <fstream>
#include <istream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace lowpass {

// Parses `in`; `label` starts every message ("c.json", "folds 'f.json'"). Throws Error
// "<label>: key 'model.type' appears twice" (the JSON path, array items as [i]) for a repeated key at any depth and
// "<label>: not valid JSON (<nlohmann's message>)" for a syntax error or a number out of range.
inline nlohmann::json parse_json_stream(std::istream& in, const std::string& label) {
  using json = nlohmann::json;
  struct Frame {
    bool object = false;
    std::set<std::string> keys;
    std::string key;    // the object's latest key
    int64_t items = 0;  // the array's finished items
  };
  std::vector<Frame> open;
  auto path_to = [&](const std::string& key) {
    std::string p;
    for (size_t i = 0; i + 1 < open.size(); ++i) {  // each outer container's position of the next one
      if (open[i].object) {
        if (!p.empty()) p.push_back('.');
        p.append(open[i].key);
      } else {
        p.push_back('[');
        p.append(std::to_string(open[i].items));
        p.push_back(']');
      }
    }
    if (!p.empty()) p.push_back('.');
    return p.append(key);
  };
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start: open.push_back({true, {}, {}, 0}); break;
      case json::parse_event_t::array_start: open.push_back({false, {}, {}, 0}); break;
      case json::parse_event_t::key: {
        std::string k = parsed.get<std::string>();
        LP_CHECK(!open.empty() && open.back().keys.insert(k).second, label, ": key '", path_to(k), "' appears twice");
        open.back().key = std::move(k);
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        if (!open.empty() && !open.back().object) ++open.back().items;
        break;
      case json::parse_event_t::value:
        if (!open.empty() && !open.back().object) ++open.back().items;
        break;
    }
    return true;
  };
  try {
    return json::parse(in, cb);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999 (fuzz finding)
    throw Error(label + ": not valid JSON (" + e.what() + ")");
  }
}

inline nlohmann::json parse_json_text(const std::string& text, const std::string& label) {
  std::istringstream in(text);
  return parse_json_stream(in, label);
}

// The file at `path`; `label` defaults to the path. A file that cannot be opened is "<label>: cannot open".
inline nlohmann::json parse_json_file(const std::string& path, const std::string& label = "") {
  const std::string& l = label.empty() ? path : label;
  std::ifstream in(path);
  LP_CHECK(in.good(), l, ": cannot open");
  return parse_json_stream(in, l);
}

}  // namespace lowpass
