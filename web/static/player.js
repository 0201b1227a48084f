// relaymesh player: plays the page's stream over WebRTC (WHEP, written
// here), falling back to LL-HLS (natively where the browser plays HLS,
// Safari, else with the vendored hls.js) when WHEP is refused or does not
// connect. A URL fragment picks one transport: #whep, #ll-hls or #flv
// (HTTP-FLV with the vendored mpegts.js; only when asked for).
// window.relaymeshPlayers lists the transports in order of preference.
// For people and tests the page shows, and window.relaymesh* holds, the
// transport, the decoded frames and the measured latency.
(function () {
  var video = document.getElementById('video');
  var stat = document.getElementById('status');
  var note = '', why = ''; // why: the reason a transport was given up
  function show(s) { note = s; }

  // whep plays over WebRTC: a recvonly offer POSTed to the stream's WHEP
  // URL at once, its candidates trickled after it as they are gathered
  // (PATCH with an SDP fragment, RFC 8840, as WHEP specifies); fail() is
  // called once when that is refused or ICE/DTLS do not connect in 10 s.
  // window.relaymeshTrickled counts the candidates the node took.
  function whep(video, url, fail) {
    if (!window.RTCPeerConnection) return false;
    var pc = new RTCPeerConnection();
    var failed = false, loc = null;
    var queued = [], ended = false, sending = false;
    window.relaymeshTrickled = 0;
    function giveUp(reason) {
      if (failed) return;
      failed = true;
      pc.close();
      if (loc) fetch(loc, { method: 'DELETE', keepalive: true }).catch(function () {});
      why = 'WebRTC: ' + reason;
      fail();
    }
    // trickle PATCHes what is queued (one request at a time, so the
    // node sees the candidates in order and a session's PATCH limit is
    // not spent on one request per candidate)
    function trickle() {
      if (!loc || sending || failed || (!queued.length && !ended)) return;
      var sdp = pc.localDescription.sdp;
      var ufrag = (sdp.match(/a=ice-ufrag:(.*)/) || [])[1], pwd = (sdp.match(/a=ice-pwd:(.*)/) || [])[1];
      var cands = queued, end = ended && !queued.length;
      queued = [];
      if (end) ended = false;
      var frag = 'a=ice-ufrag:' + ufrag.trim() + '\r\na=ice-pwd:' + pwd.trim() + '\r\n';
      var mid = cands.length ? cands[0].sdpMid : '0';
      frag += 'm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:' + mid + '\r\n';
      cands.forEach(function (c) { if (c.sdpMid === mid) frag += 'a=' + c.candidate + '\r\n'; else queued.push(c); });
      if (end) frag += 'a=end-of-candidates\r\n';
      sending = true;
      fetch(loc, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' }, body: frag }).then(function (r) {
        if (r.status === 204) window.relaymeshTrickled += cands.length - queued.length;
      }).catch(function () {}).then(function () { sending = false; trickle(); });
    }
    pc.onicecandidate = function (e) {
      if (e.candidate && e.candidate.candidate) queued.push(e.candidate);
      else if (!e.candidate) ended = true;
      trickle();
    };
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    var ms = new MediaStream();
    pc.ontrack = function (e) { ms.addTrack(e.track); if (video.srcObject !== ms) video.srcObject = ms; };
    pc.onconnectionstatechange = function () {
      if (pc.connectionState === 'failed') giveUp('connection failed');
      if (pc.connectionState === 'connected') show('');
    };
    var timer = setTimeout(function () { if (pc.connectionState !== 'connected') giveUp('not connected within 10 s'); }, 10000);
    pc.createOffer().then(function (o) {
      return pc.setLocalDescription(o);
    }).then(function () {
      return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    }).then(function (r) {
      return r.text().then(function (body) {
        if (r.status !== 201) throw new Error('WHEP answered ' + r.status + ': ' + body.trim());
        loc = r.headers.get('Location');
        return pc.setRemoteDescription({ type: 'answer', sdp: body }).then(trickle);
      });
    }).catch(function (e) { clearTimeout(timer); giveUp(e.message); });
    window.addEventListener('pagehide', function () {
      if (loc && !failed) fetch(loc, { method: 'DELETE', keepalive: true });
    });
    window.relaymeshPC = pc;
    return true;
  }

  function llhls(video, src) {
    video.srcObject = null;
    if (window.Hls && Hls.isSupported()) {
      var hls = new Hls({ lowLatencyMode: true, liveSyncDurationCount: 1 });
      hls.on(Hls.Events.ERROR, function (_, d) { if (d.fatal) why = 'hls.js: ' + d.details; });
      hls.loadSource(src);
      hls.attachMedia(video);
      window.relaymeshHls = hls;
      return true;
    }
    if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = src;
      return true;
    }
    return false;
  }

  // flv plays HTTP-FLV through MSE with mpegts.js: the stream's .flv
  // (the page's token carried) fetched as one endless response, demuxed
  // and remuxed to fMP4 in the page; kept near the live edge by playing
  // 1.2x fast while more than 0.8 s is buffered, and by jumping to 0.3 s
  // from the end past 1.5 s (a loaded machine's decoder cannot catch up
  // by speed alone: bench/g2g.sh measured p50 0.74-0.85 s without the
  // jumps, 0.37-0.44 s with them).
  function flv(video, src) {
    if (!window.mpegts || !mpegts.isSupported()) return false;
    video.srcObject = null;
    var p = mpegts.createPlayer({ type: 'flv', isLive: true, url: src }, {
      enableStashBuffer: false, liveSync: true, liveSyncTargetLatency: 0.3, liveSyncMaxLatency: 0.8, liveSyncPlaybackRate: 1.2,
      liveBufferLatencyChasing: true, liveBufferLatencyMaxLatency: 1.5, liveBufferLatencyMinRemain: 0.3
    });
    p.on(mpegts.Events.ERROR, function (type, detail, info) {
      why = 'mpegts.js: ' + type + ' ' + detail + (info && info.msg ? ' (' + info.msg + ')' : '');
    });
    p.attachMediaElement(video);
    p.load();
    window.relaymeshFlv = p;
    return true;
  }

  var players = window.relaymeshPlayers || [];
  players.push({ name: 'whep', play: function (video, next) { return whep(video, video.dataset.whep, next); } });
  players.push({ name: 'll-hls', play: function (video) { return llhls(video, video.dataset.src); } });
  players.push({ name: 'flv', asked: true, play: function (video) { return flv(video, video.dataset.flv); } });
  var want = location.hash.slice(1);
  players = players.filter(function (p) { return want ? p.name === want : !p.asked; });
  // start plays with players[i], or the next one when it cannot play or
  // gives up
  function start(i) {
    if (i >= players.length) { window.relaymeshTransport = 'none'; return; }
    if (!players[i].play(video, function () { start(i + 1); })) return start(i + 1);
    window.relaymeshTransport = players[i].name;
    video.play().catch(function () { if (video.paused) show('press play'); });
  }
  start(0);

  // WebRTC latency: the receiver's jitter buffer (jitterBufferDelay per
  // emitted frame) plus half the ICE round trip; HLS: behind the live edge;
  // HTTP-FLV: what is buffered ahead of the frame shown.
  var rtcLatency = null;
  function pollRTC() {
    var pc = window.relaymeshPC;
    if (!pc || window.relaymeshTransport !== 'whep' || pc.connectionState !== 'connected') return;
    pc.getStats().then(function (st) {
      var jb = null, rtt = null;
      st.forEach(function (r) {
        if (r.type === 'inbound-rtp' && r.kind === 'video' && r.jitterBufferEmittedCount) {
          jb = r.jitterBufferDelay / r.jitterBufferEmittedCount;
          window.relaymeshDecoded = r.framesDecoded;
        }
        if (r.type === 'candidate-pair' && r.nominated && r.currentRoundTripTime !== undefined) rtt = r.currentRoundTripTime;
      });
      if (jb !== null) rtcLatency = jb + (rtt || 0) / 2;
    });
  }
  // presented frames, for browsers whose playback quality does not count
  // a MediaStream's frames
  var presented = 0;
  if (video.requestVideoFrameCallback) {
    var onFrame = function () { presented++; video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);
  }
  setInterval(function () {
    pollRTC();
    var q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    var frames = Math.max(q ? q.totalVideoFrames : 0, presented);
    var lat = null;
    if (window.relaymeshTransport === 'whep') lat = rtcLatency;
    else if (window.relaymeshHls && relaymeshHls.latency) lat = relaymeshHls.latency;
    else if (window.relaymeshTransport === 'flv') lat = video.buffered.length ? video.buffered.end(video.buffered.length - 1) - video.currentTime : null;
    else if (video.seekable.length) lat = video.seekable.end(video.seekable.length - 1) - video.currentTime;
    window.relaymeshFrames = frames;
    window.relaymeshLatency = lat;
    var l = lat === null ? '' : (window.relaymeshTransport === 'whep' ? (lat * 1000).toFixed(0) + ' ms latency (jitter buffer + RTT/2)' : lat.toFixed(2) + (window.relaymeshTransport === 'flv' ? ' s buffered' : ' s behind live'));
    stat.textContent = (window.relaymeshTransport || 'none') + ' | ' + frames + ' frames | ' + l + (note && video.paused ? ' | ' + note : '') + (why ? ' | ' + why : '');
  }, 500);
})();
