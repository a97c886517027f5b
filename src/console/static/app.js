/* Samsa console: one page, routes in the URL's hash, data from /api/ (see
 * docs/console.md). No framework: elements are built with el(), and text
 * always goes in as text (never as HTML). Script errors are shown in
 * #errors, which the browser tests check. */
'use strict';

(function () {
  var app = document.getElementById('app');
  var errorsBox = document.getElementById('errors');
  var cluster = null;          /* /api/cluster, loaded once */
  var chartTimer = null;

  function reportError(msg) {
    errorsBox.hidden = false;
    errorsBox.appendChild(document.createTextNode(msg + '\n'));
    document.body.dataset.errors = String((Number(document.body.dataset.errors) || 0) + 1);
  }
  window.addEventListener('error', function (e) { reportError('Script error: ' + e.message); });
  document.addEventListener('securitypolicyviolation', function (e) {
    reportError('Blocked by the content security policy: ' + e.violatedDirective + ' ' + e.blockedURI);
  });
  window.addEventListener('unhandledrejection', function (e) {
    reportError('Unhandled: ' + (e.reason && e.reason.message ? e.reason.message : e.reason));
  });

  /* el('tag.class', {attr: v}, child...) ; children: strings, nodes, arrays, null */
  function el(spec, attrs) {
    var parts = spec.split('.');
    var node = document.createElement(parts[0]);
    if (parts.length > 1) node.className = parts.slice(1).join(' ');
    var i = 1;
    if (attrs && typeof attrs === 'object' && !(attrs instanceof Node) && !Array.isArray(attrs)) {
      Object.keys(attrs).forEach(function (k) {
        if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), attrs[k]);
        else if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
      });
      i = 2;
    }
    for (; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, c) {
    if (c === null || c === undefined) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(node, x); }); return; }
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  function show() {
    app.textContent = '';
    for (var i = 0; i < arguments.length; i++) append(app, arguments[i]);
  }

  function api(path, opts) {
    return fetch('/api/' + path, opts || {}).then(function (r) {
      return r.text().then(function (t) {
        var body;
        try { body = JSON.parse(t); } catch (e) { body = {error: t}; }
        if (!r.ok) { var err = new Error(body.error || ('HTTP ' + r.status)); err.status = r.status; throw err; }
        return body;
      });
    });
  }
  function q(params) {
    return Object.keys(params).filter(function (k) { return params[k] !== '' && params[k] !== null && params[k] !== undefined; })
      .map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]); }).join('&');
  }
  function table(id, headers, rows) {
    return el('table', {id: id},
      el('thead', null, el('tr', null, headers.map(function (h) {
        return el(h.num ? 'th.num' : 'th', null, h.label || h);
      }))),
      el('tbody', null, rows.length ? rows.map(function (r) {
        return el('tr', null, r.map(function (c, i) {
          return el(headers[i].num ? 'td.num' : 'td', null, c === null || c === undefined ? '-' : c);
        }));
      }) : el('tr.empty', null, el('td.muted', {colspan: String(headers.length)}, 'none'))));
  }
  function num(label) { return {label: label, num: true}; }
  function bytes(n) {
    if (n === null || n === undefined) return '-';
    var u = ['B', 'KB', 'MB', 'GB', 'TB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }
  function card(k, v, cls) { return el('div.card', null, el('div.v' + (cls ? '.' + cls : ''), null, String(v)), el('div.k', null, k)); }
  function failed(where) {
    return function (e) { show(el('h1', null, where), el('div.error', {id: 'api-error'}, e.message)); ready(); };
  }
  function ready() { document.body.dataset.ready = '1'; }
  function topicLink(name) { return el('a', {href: '#/topic/' + encodeURIComponent(name)}, name); }
  function groupLink(id) { return el('a', {href: '#/group/' + encodeURIComponent(id)}, id); }

  /* ---- pages ---- */

  function pageCluster() {
    api('cluster').then(function (c) {
      cluster = c;
      show(el('h1', null, 'Cluster ' + c.cluster_id),
        el('div.cards', null,
          card('nodes', c.nodes.length), card('controller', c.controller_id), card('topics', c.topics),
          card('partitions', c.partitions),
          card('under-replicated', c.under_replicated_partitions, c.under_replicated_partitions ? 'bad' : 'ok'),
          card('offline', c.offline_partitions, c.offline_partitions ? 'bad' : 'ok'),
          card('groups here', c.groups)),
        el('p.muted', null, 'This page is served by node ' + c.node_id + ' (Kafka ' + c.kafka_version +
          ' protocol), up ' + Math.round(c.uptime_ms / 1000) + ' s.'),
        el('h2', null, 'Nodes'),
        table('nodes', [num('Id'), 'Host', num('Port'), 'Rack', 'State', 'Controller', 'Listeners'],
          c.nodes.map(function (n) {
            return [String(n.id), n.host, String(n.port), n.rack,
              el(n.alive ? 'span.ok' : 'span.bad', null, n.fenced ? 'fenced' : n.alive ? 'alive' : 'down'),
              n.controller ? 'yes' : '',
              n.endpoints.map(function (e) { return e.listener + '://' + e.host + ':' + e.port; }).join(' ')];
          })));
      ready();
    }).catch(failed('Cluster'));
  }

  function pageTopics() {
    api('topics').then(function (d) {
      show(el('h1', null, 'Topics'),
        table('topics', ['Name', num('Partitions'), num('Replication'), num('Under-replicated'), num('Offline'),
          num('Messages'), num('Size'), ''],
        d.topics.map(function (t) {
          return [topicLink(t.name), String(t.partitions), String(t.replication_factor),
            el(t.under_replicated_partitions ? 'span.bad' : 'span', null, String(t.under_replicated_partitions)),
            el(t.offline_partitions ? 'span.bad' : 'span', null, String(t.offline_partitions)),
            String(t.messages), bytes(t.size_bytes), t.internal ? 'internal' : ''];
        })));
      ready();
    }).catch(failed('Topics'));
  }

  function pageTopic(name) {
    api('topic?' + q({name: name})).then(function (t) {
      var ov = Object.keys(t.overrides).map(function (k) { return k + '=' + t.overrides[k]; }).join(',');
      show(el('h1', null, 'Topic ' + t.name),
        el('p.muted', null, 'TopicId: ' + t.id + '  PartitionCount: ' + t.partitions.length +
          '  Configs: ' + (ov || '(none)')),
        el('h2', null, 'Partitions'),
        table('partitions', [num('Partition'), num('Leader'), 'Replicas', 'Isr', num('Log start'), num('High watermark'),
          num('Log end'), num('Size'), num('Segments'), ''],
        t.partitions.map(function (p) {
          return [String(p.partition), String(p.leader), p.replicas.join(','),
            el(p.isr.length < p.replicas.length ? 'span.bad' : 'span', null, p.isr.join(',')),
            p.local ? String(p.log_start_offset) : null, p.local ? String(p.high_watermark) : null,
            p.local ? String(p.log_end_offset) : null, p.local ? bytes(p.size_bytes) : null,
            p.local ? String(p.segments) : null,
            p.local ? el('a', {href: '#/messages?' + q({topic: t.name, partition: p.partition})}, 'browse') : 'not on this node'];
        })),
        el('h2', null, 'Configs'),
        table('configs', ['Name', 'Value', 'Source'], t.configs.map(function (c) {
          return [c.name, c.sensitive ? '(sensitive)' : c.value, c.source];
        })));
      ready();
    }).catch(failed('Topic ' + name));
  }

  function pretty(s) {
    if (s === null || s === undefined) return el('span.muted', null, 'null');
    var t = s.trim();
    if (t && (t[0] === '{' || t[0] === '[')) {
      try { return el('pre.json', null, JSON.stringify(JSON.parse(t), null, 2)); } catch (e) { /* not JSON */ }
    }
    return el('pre', null, s);
  }
  function shown(o, name) {
    if (o[name + '_base64'] !== undefined) return el('pre', null, '(binary, base64) ' + o[name + '_base64']);
    var node = pretty(o[name]);
    if (o[name + '_truncated'] !== undefined) return [node, el('div.muted', null, '(first 64 KB of ' + o[name + '_truncated'] + ' bytes)')];
    return node;
  }

  function pageMessages(params) {
    api('topics').then(function (d) {
      var topic = params.topic || (d.topics.filter(function (t) { return !t.internal; })[0] || {}).name || '';
      var sel = el('select', {name: 'topic'}, d.topics.map(function (t) {
        var o = el('option', {value: t.name}, t.name);
        if (t.name === topic) o.selected = true;
        return o;
      }));
      var part = el('input', {name: 'partition', type: 'number', min: '0', value: params.partition || '0'});
      var off = el('input', {name: 'offset', type: 'number', min: '0', value: params.offset || '', placeholder: 'log start'});
      var ts = el('input', {name: 'timestamp', type: 'datetime-local', step: '1',
        value: params.timestamp ? new Date(Number(params.timestamp) - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 19) : ''});
      var count = el('input', {name: 'count', type: 'number', min: '1', max: '100', value: params.count || '20'});
      var newest = el('input', {name: 'newest', type: 'checkbox'});
      newest.checked = params.from === 'end';
      var form = el('form.bar', {id: 'browse', onsubmit: function (e) {
        e.preventDefault();
        var p = {topic: sel.value, partition: part.value, count: count.value};
        if (newest.checked) p.from = 'end';
        else if (ts.value) p.timestamp = String(new Date(ts.value).getTime());
        else if (off.value !== '') p.offset = off.value;
        location.hash = '#/messages?' + q(p);
      }},
      el('label', null, 'Topic', sel), el('label', null, 'Partition', part), el('label', null, 'From offset', off),
      el('label', null, 'or from time', ts), el('label', null, 'or the newest', newest),
      el('label', null, 'Count (max 100)', count), el('button', {type: 'submit'}, 'Load'));
      show(el('h1', null, 'Messages'), form, el('div', {id: 'result'}));
      if (!topic) { ready(); return; }
      var req = {topic: topic, partition: params.partition || '0', count: params.count || '20',
        offset: params.offset, timestamp: params.timestamp, from: params.from};
      return api('messages?' + q(req)).then(function (m) {
        var res = document.getElementById('result');
        var next = Object.assign({}, req, {offset: m.next_offset, timestamp: '', from: ''});
        append(res, [
          el('p.muted', {id: 'range'}, m.topic + '-' + m.partition + ': log start ' + m.log_start_offset +
            ', high watermark ' + m.high_watermark + '; showing ' + m.records.length + ' from offset ' + m.from_offset + '.'),
          m.stopped ? el('div.error', null, 'Stopped: ' + m.stopped) : null,
          table('records', [num('Offset'), 'Timestamp', 'Key', 'Value', 'Headers'], m.records.map(function (r) {
            return [String(r.offset), new Date(r.timestamp).toISOString() + (r.timestamp_type === 'LogAppendTime' ? ' (append)' : ''),
              shown(r, 'key'), shown(r, 'value'),
              r.headers.map(function (h) { return el('div', null, (h.key || '') + ': ', shown(h, 'value')); })];
          })),
          m.next_offset < m.high_watermark ? el('a', {id: 'next', href: '#/messages?' + q(next)}, 'Next page →') : null]);
        ready();
      }, function (e) {
        append(document.getElementById('result'), el('div.error', {id: 'api-error'}, e.message));
        ready();
      });
    }).catch(failed('Messages'));
  }

  function pageGroups() {
    api('groups').then(function (d) {
      show(el('h1', null, 'Consumer groups'),
        el('p.muted', null, 'Groups coordinated by node ' + d.coordinator + ' (each node\'s console shows its own groups).'),
        table('groups', ['Group', 'State', 'Protocol', num('Members'), num('Committed partitions'), num('Total lag')],
          d.groups.map(function (g) {
            return [groupLink(g.group_id), g.state, g.protocol_type + (g.protocol ? ' / ' + g.protocol : ''),
              String(g.members), String(g.committed_offsets), String(g.lag)];
          })));
      ready();
    }).catch(failed('Consumer groups'));
  }

  function resetForm(g) {
    var topics = [];
    g.offsets.forEach(function (o) { if (topics.indexOf(o.topic) < 0) topics.push(o.topic); });
    var msg = el('div', {id: 'reset-result'});
    if (cluster && cluster.read_only)
      return el('p.muted', {id: 'reset-disabled'}, 'Offset reset is off: the console is read-only (console.read.only=true).');
    if (g.state !== 'Empty')
      return el('p.muted', {id: 'reset-disabled'}, 'Offsets can be reset only while the group is Empty (it is ' + g.state + ').');
    var topic = el('select', {name: 'topic'}, topics.map(function (t) { return el('option', {value: t}, t); }));
    var part = el('input', {name: 'partition', type: 'number', min: '0', placeholder: 'all'});
    var to = el('select', {name: 'to'}, ['earliest', 'latest', 'offset', 'timestamp'].map(function (t) {
      return el('option', {value: t}, t);
    }));
    var value = el('input', {name: 'value', placeholder: 'offset or ms since epoch'});
    return el('div', null, el('form.bar', {id: 'reset', onsubmit: function (e) {
      e.preventDefault();
      var p = {group: g.group_id, topic: topic.value, partition: part.value, to: to.value};
      if (to.value === 'offset') p.offset = value.value;
      if (to.value === 'timestamp') p.timestamp = value.value;
      var what = 'Reset the offsets of group ' + g.group_id + ' on ' + topic.value +
        (part.value !== '' ? '-' + part.value : ' (all partitions)') + ' to ' + to.value + ' ' + (value.value || '') + '?';
      if (!window.confirm(what)) return;
      api('group/reset?' + q(p), {method: 'POST', headers: {'X-Samsa-Console': '1'}}).then(function (r) {
        msg.textContent = 'Reset (' + r.status + '): ' + r.offsets.map(function (o) {
          return o.topic + '-' + o.partition + '=' + o.offset; }).join(', ');
        setTimeout(route, 500);
      }, function (err) { msg.textContent = ''; append(msg, el('div.error', null, err.message)); });
    }},
    el('label', null, 'Topic', topic), el('label', null, 'Partition', part), el('label', null, 'To', to),
    el('label', null, 'Value', value), el('button.danger', {type: 'submit'}, 'Reset offsets…')), msg);
  }

  function pageGroup(id) {
    var load = cluster ? Promise.resolve(cluster) : api('cluster').then(function (c) { cluster = c; return c; });
    load.then(function () { return api('group?' + q({id: id})); }).then(function (g) {
      show(el('h1', null, 'Group ' + g.group_id),
        el('div.cards', null, card('state', g.state), card('members', g.members.length),
          card('generation', g.generation), card('protocol', g.protocol || '-')),
        el('h2', null, 'Offsets and lag'),
        table('offsets', ['Topic', num('Partition'), num('Current offset'), num('Log end offset'), num('Lag'), 'Consumer id', 'Host', 'Client id'],
          g.offsets.map(function (o) {
            return [topicLink(o.topic), String(o.partition), o.current_offset === null ? null : String(o.current_offset),
              o.log_end_offset === null ? null : String(o.log_end_offset), o.lag === null ? null : String(o.lag),
              o.consumer_id, o.host, o.client_id];
          })),
        el('h2', null, 'Members'),
        table('members', ['Member id', 'Client id', 'Host', 'Instance id', 'Assignment'], g.members.map(function (m) {
          return [m.member_id, m.client_id, m.client_host, m.instance_id,
            m.assignment.map(function (a) { return a.topic + '-' + a.partition; }).join(', ')];
        })),
        el('h2', null, 'Reset offsets'), resetForm(g));
      ready();
    }).catch(failed('Group ' + id));
  }

  /* live charts: counters from /api/rates every 2 s, rates over the last 2 minutes */
  var COLORS = ['#1f5fbf', '#e8590c', '#2f9e44', '#c2255c', '#7048e8', '#0c8599', '#e67700', '#5c940d'];
  function drawChart(canvas, series, field, unit) {
    var width = Math.max(300, canvas.parentNode.clientWidth - 16);
    if (canvas.width !== width) canvas.width = width; /* fill the card */
    var ctx = canvas.getContext('2d');
    var w = canvas.width, h = canvas.height, pad = 56;
    ctx.clearRect(0, 0, w, h);
    var top = 0;
    series.forEach(function (s) { s.points.forEach(function (p) { if (p[field] > top) top = p[field]; }); });
    /* a round top for the axis: 1, 2 or 5 times a power of ten */
    var max = 1;
    if (top > 0) {
      var e = Math.pow(10, Math.floor(Math.log10(top)));
      max = [1, 2, 5, 10].map(function (m) { return m * e; }).filter(function (v) { return v >= top; })[0];
    }
    function label(v) {
      if (unit === 'B') return bytes(Math.round(v)) + '/s';
      return (v < 10 && v !== Math.round(v) ? v.toFixed(1) : String(Math.round(v))) + '/s';
    }
    ctx.strokeStyle = '#e6e8ec';
    ctx.fillStyle = '#667085';
    ctx.font = '11px sans-serif';
    for (var i = 0; i <= 4; i++) {
      var y = h - pad / 2 - (h - pad) * i / 4;
      ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 5, y); ctx.stroke();
      ctx.fillText(label(max * i / 4), 2, y + 4);
    }
    series.forEach(function (s, k) {
      ctx.strokeStyle = COLORS[k % COLORS.length];
      ctx.lineWidth = 2;
      ctx.beginPath();
      s.points.forEach(function (p, j) {
        var x = pad + (w - pad - 5) * (j + 60 - s.points.length) / 59;
        var y = h - pad / 2 - (h - pad) * p[field] / max;
        if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    });
  }
  function pageCharts() {
    var last = null, series = {};
    var msgs = el('canvas', {id: 'chart-messages', width: '1000', height: '220'});
    var byts = el('canvas', {id: 'chart-bytes', width: '1000', height: '220'});
    var legend = el('div.legend'), rates = el('div', {id: 'rates-box'});
    show(el('h1', null, 'Live charts'),
      el('p.muted', null, 'Messages and bytes appended per second by topic on this node (as leader), sampled every 2 s.'),
      legend, el('div.chart', null, el('h2', null, 'Messages in / s'), msgs),
      el('div.chart', null, el('h2', null, 'Bytes in / s'), byts), rates);
    function tick() {
      api('rates').then(function (r) {
        if (last) {
          var dt = Math.max(1, r.time_ms - last.time_ms) / 1000;
          var prev = {};
          last.topics.forEach(function (t) { prev[t.topic] = t; });
          r.topics.forEach(function (t) {
            var p = prev[t.topic] || {messages_in: t.messages_in, bytes_in: t.bytes_in, bytes_out: t.bytes_out};
            var s = series[t.topic] || (series[t.topic] = {topic: t.topic, points: []});
            s.points.push({m: (t.messages_in - p.messages_in) / dt, b: (t.bytes_in - p.bytes_in) / dt,
              o: (t.bytes_out - p.bytes_out) / dt});
            if (s.points.length > 60) s.points.shift();
          });
        }
        last = r;
        var list = Object.keys(series).sort().map(function (k) { return series[k]; })
          .filter(function (s) { return s.topic.slice(0, 2) !== '__'; });
        legend.textContent = '';
        list.forEach(function (s, k) {
          var swatch = el('i');
          swatch.style.background = COLORS[k % COLORS.length]; /* CSSOM: allowed by the page's CSP */
          append(legend, el('span', null, swatch, s.topic));
        });
        drawChart(msgs, list, 'm', '');
        drawChart(byts, list, 'b', 'B');
        rates.textContent = '';
        append(rates, [el('h2', null, 'Now'), table('rates', ['Topic', num('Messages in / s'), num('Bytes in / s'), num('Bytes out / s'),
          num('Messages in (total)')], r.topics.map(function (t) {
          var s = series[t.topic], p = s && s.points.length ? s.points[s.points.length - 1] : {m: 0, b: 0, o: 0};
          return [t.topic, p.m.toFixed(1), bytes(Math.round(p.b)), bytes(Math.round(p.o)), String(t.messages_in)];
        }))]);
        ready();
      }).catch(function (e) { rates.textContent = ''; append(rates, el('div.error', {id: 'api-error'}, e.message)); ready(); });
    }
    tick();
    chartTimer = setInterval(tick, 2000);
  }

  /* ---- routing ---- */

  function route() {
    if (chartTimer) { clearInterval(chartTimer); chartTimer = null; }
    delete document.body.dataset.ready;
    var hash = location.hash.replace(/^#\/?/, '');
    var qi = hash.indexOf('?');
    var path = qi < 0 ? hash : hash.slice(0, qi);
    var params = {};
    function decode(x) { try { return decodeURIComponent(x); } catch (e) { return x; } } /* a hand-typed '%' */
    if (qi >= 0) hash.slice(qi + 1).split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) params[decode(kv.slice(0, i))] = decode(kv.slice(i + 1));
    });
    var seg = path.split('/');
    var page = seg[0] || 'cluster';
    document.body.dataset.page = page;
    Array.prototype.forEach.call(document.querySelectorAll('[data-nav]'), function (a) {
      a.classList.toggle('active', a.dataset.nav === page || a.dataset.nav + 's' === page);
    });
    var arg = seg.length > 1 ? decode(seg.slice(1).join('/')) : '';
    if (page === 'cluster') pageCluster();
    else if (page === 'topics') pageTopics();
    else if (page === 'topic') pageTopic(arg);
    else if (page === 'messages') pageMessages(params);
    else if (page === 'groups') pageGroups();
    else if (page === 'group') pageGroup(arg);
    else if (page === 'charts') pageCharts();
    else { show(el('h1', null, 'Not found'), el('p', null, 'No page ' + page + '.')); ready(); }
  }

  api('cluster').then(function (c) {
    cluster = c;
    document.getElementById('mode').textContent = 'node ' + c.node_id + ' · ' + (c.read_only ? 'read-only' : 'writes allowed');
  }).catch(function () { /* the page itself shows the error */ });
  window.addEventListener('hashchange', route);
  route();
}());
