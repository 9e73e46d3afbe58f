package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/imports"
)

// Import tasks: /api/v1/counters/{id}/imports[/{task}[/run|/runs]].

func taskID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("task"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, errNotFound)
		return 0, false
	}
	return id, true
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request, id int64) {
	ts, err := s.tasks.List(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"imports": ts})
}

func (s *Server) createTask(w http.ResponseWriter, r *http.Request, id int64) {
	var in imports.TaskInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	t, err := s.tasks.Create(r.Context(), id, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.scheduler.Wake() // an active task runs at once
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request, id int64) {
	tid, ok := taskID(w, r)
	if !ok {
		return
	}
	t, err := s.tasks.Get(r.Context(), id, tid)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) updateTask(w http.ResponseWriter, r *http.Request, id int64) {
	tid, ok := taskID(w, r)
	if !ok {
		return
	}
	var in imports.TaskInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	t, err := s.tasks.Update(r.Context(), id, tid, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.scheduler.Wake()
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) deleteTask(w http.ResponseWriter, r *http.Request, id int64) {
	tid, ok := taskID(w, r)
	if !ok {
		return
	}
	if err := s.tasks.Delete(r.Context(), id, tid); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// runTask runs a task now and answers with the run's record: 200 when it
// passed, 422 when it failed (the record says why), 409 when the task is
// running already.
func (s *Server) runTask(w http.ResponseWriter, r *http.Request, id int64) {
	tid, ok := taskID(w, r)
	if !ok {
		return
	}
	t, err := s.tasks.Get(r.Context(), id, tid)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The run goes on if the client hangs up: it is logged either way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.scheduler.RunTimeout)
	defer cancel()
	res, err := s.tasks.Run(ctx, s.fetcher, t, s.cfg.Imports.TempDir)
	if errors.Is(err, imports.ErrRunning) {
		writeError(w, &Error{Status: http.StatusConflict, Code: "running", Message: err.Error()})
		return
	}
	if res == nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if res.Status != crm.StatusPassed {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, res)
}

func (s *Server) listTaskRuns(w http.ResponseWriter, r *http.Request, id int64) {
	tid, ok := taskID(w, r)
	if !ok {
		return
	}
	if _, err := s.tasks.Get(r.Context(), id, tid); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, apiErr := pageSize(r.URL.Query().Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	runs, err := crm.ListImports(r.Context(), s.db, id, crm.ImportQuery{TaskID: tid, Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

// taskStatuses lists a retailcrm task's statuses with the types they are
// offered as and the counter's mapping (GET); POST also stores the
// suggestions for the codes the counter has not mapped yet.
func (s *Server) taskStatuses(w http.ResponseWriter, r *http.Request, id int64) {
	tid, ok := taskID(w, r)
	if !ok {
		return
	}
	list, added, err := s.tasks.RetailStatuses(r.Context(), id, tid, r.Method == http.MethodPost)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"statuses": list, "added": added})
}
